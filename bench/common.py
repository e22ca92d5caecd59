"""What every bench script shares: a database, the real daemon, /proc readings, plates, JPEGs, checks."""

import io
import json
import os
import random
import secrets
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import orjson
import psycopg2
from PIL import Image

from config import database_url
from lprserver.database import upgrade_database
from lprserver.plates import normalize_plate, parse_plate
from tests import processes
from tests.pgcluster import ThrowawayPostgres

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
CLK_TCK = os.sysconf("SC_CLK_TCK")

THAI_CONSONANTS = "กขคฆงจฉชซฌญฎฏฐฑฒณดตถทธนบปผพฟภมยรลวศษสหฬอฮ"
THAI_PROVINCES = ("กรุงเทพมหานคร", "เชียงใหม่", "ขอนแก่น", "ภูเก็ต", "ชลบุรี", "นนทบุรี", "สงขลา", "นครราชสีมา")
LATIN = "ABCDEFGHJKLMNPRSTUVWXYZ"


# --- the simulated clients' JSON -----------------------------------------------------------------

class ClientJson:
    """orjson behind the standard library's dumps/loads, for the simulated cameras and dashboard.

    python-socketio takes any module with those two functions (`json=`). The standard encoder scans
    every character of a camera's 53 KB of base64 for escapes (a third of a camera process's CPU);
    orjson does it several times faster, so less of the machine goes to the harness and more is
    left to the server it measures. Output is the same compact JSON (UTF-8, no spaces).
    """

    @staticmethod
    def dumps(obj, **_options) -> str:  # python-socketio passes separators=(",", ":"): orjson's only form
        return orjson.dumps(obj).decode()

    @staticmethod
    def loads(text, **_options):
        return orjson.loads(text)


# --- plates and images ---------------------------------------------------------------------------

def random_plate(rng: random.Random) -> str:
    """Return a plate as cameras read them: mostly Thai (`กข1234`, `1กข234`), some Latin (`ABC1234`)."""
    kind = rng.random()
    if kind < 0.6:
        return f"{rng.choice(THAI_CONSONANTS)}{rng.choice(THAI_CONSONANTS)}{rng.randint(1, 9999)}"
    if kind < 0.85:
        letters = rng.choice(THAI_CONSONANTS) + rng.choice(THAI_CONSONANTS)
        return f"{rng.randint(1, 9)}{letters}{rng.randint(1, 9999)}"
    letters = "".join(rng.choice(LATIN) for _ in range(rng.randint(2, 3)))
    return f"{letters}{rng.randint(1, 9999)}"


def jpeg_of_size(target_bytes: int, width: int = 640, height: int = 480, seed: int = 1) -> bytes:
    """Return a noisy width×height JPEG whose size is close to target_bytes (quality is searched)."""
    rng = random.Random(seed)
    small = (width // 16, height // 16)
    base = Image.frombytes("RGB", small, rng.randbytes(small[0] * small[1] * 3)).resize((width, height))
    best = b""
    for amount in (0.1, 0.2, 0.35, 0.5, 0.75, 1.0):
        noise = Image.frombytes("RGB", (width, height), rng.randbytes(width * height * 3))
        img = Image.blend(base, noise, amount)
        low, high = 5, 95
        while low <= high:
            quality = (low + high) // 2
            out = io.BytesIO()
            img.save(out, "JPEG", quality=quality)
            data = out.getvalue()
            if abs(len(data) - target_bytes) < abs(len(best) - target_bytes):
                best = data
            if len(data) < target_bytes:
                low = quality + 1
            else:
                high = quality - 1
        if abs(len(best) - target_bytes) <= target_bytes * 0.05:
            return best
    return best


# --- /proc ---------------------------------------------------------------------------------------

def cpu_seconds(pid: int) -> float:
    """Return user + system CPU seconds the process has used (/proc/<pid>/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def memory_kb(pid: int) -> dict:
    """Return VmRSS and VmHWM (peak RSS) in kB from /proc/<pid>/status."""
    found = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            found[name] = int(value.split()[0])
    return found


class CpuMeter:
    """CPU % of some processes between start() and stop() (100 % = one core busy).

    `pids` is a list, or a function returning the pids of the moment: a process that appears meanwhile
    counts from its birth; one that ends meanwhile loses what it used (PostgreSQL's pooled backends live on).
    """

    def __init__(self, pids):
        self.pids = pids if callable(pids) else (lambda: pids)

    def _cpu(self) -> dict[int, float]:
        found = {}
        for pid in self.pids():
            try:
                found[pid] = cpu_seconds(pid)
            except (FileNotFoundError, ProcessLookupError):
                pass
        return found

    def start(self) -> None:
        self.cpu0, self.wall0 = self._cpu(), time.monotonic()

    def stop(self) -> float:
        used = sum(cpu - self.cpu0.get(pid, 0.0) for pid, cpu in self._cpu().items())
        return 100 * used / max(time.monotonic() - self.wall0, 1e-9)


def postgres_pids(cluster: ThrowawayPostgres | None) -> list[int]:
    """Return the postmaster's pid and its children's (backends, checkpointer, WAL writer...)."""
    if cluster is None:
        return []
    pid_file = cluster.data_dir / "postmaster.pid"
    try:
        postmaster = int(pid_file.read_text().split()[0])
    except (OSError, IndexError, ValueError):
        return []
    return with_children(postmaster)


def with_children(parent: int) -> list[int]:
    """Return `parent` and the pids of its children (gunicorn's workers, PostgreSQL's backends)."""
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rpartition(")")[2].split()[1]) == parent:
                children.append(int(stat.parent.name))
        except (OSError, ValueError):
            pass
    return [parent, *children]


# --- the database --------------------------------------------------------------------------------

class BenchDatabase:
    """A migrated PostgreSQL database: a throwaway cluster of our own, or one the caller names."""

    def __init__(self, url: str | None = None, fsync: bool = True, folder: str | None = None):
        self.cluster = None
        self.keep = folder is not None  # a cluster in a folder the caller names outlives the run
        if url is None:
            folder = folder or tempfile.mkdtemp(prefix="lpr-bench-pg-", dir=work_dir())
            self.cluster = ThrowawayPostgres(folder, fsync=fsync)
            url = self.cluster.start()
        self.url = url
        upgrade_database(database_url(url))

    def connect(self):
        return psycopg2.connect(self.url)

    def close(self) -> None:
        if self.cluster:
            if self.keep:
                self.cluster.stop()
            else:
                self.cluster.stop("immediate")
                remove_tree(self.cluster.base_dir)


def fill_blacklist(db: BenchDatabase, entries: int, seed: int = 7, mix: str = "exact") -> list[str]:
    """Insert `entries` active blacklist plates, exact-only or `mixed` (bench/blacklists.py: a quarter
    look-alike, one-edit and pattern entries); return plate texts that hit them (for exact entries, their
    texts). A list of the other mix already there is replaced."""
    if mix == "mixed":
        from .blacklists import make_entries

        made = make_entries(entries, mix, seed)
        rows = [(e.text, parse_plate(e.text).normalized, e.match, e.province_code) for e in made]
        plates = [e.hit for e in made]
    else:
        rng = random.Random(seed)
        plates = list({random_plate(rng) for _ in range(entries * 2)})[:entries]
        rows = [(plate, normalize_plate(plate), "exact", None) for plate in plates]
    now = datetime.now(UTC)
    with db.connect() as conn, conn.cursor() as cur:
        cur.execute("SELECT count(*), count(*) FILTER (WHERE match <> 'exact') FROM blacklist_plates")
        count, not_exact = cur.fetchone()
        if count >= entries and bool(not_exact) == (mix == "mixed"):
            return plates
        if count:
            cur.execute("DELETE FROM blacklist_plates")
        buffer = io.StringIO()
        for text, normalized, match, province_code in rows:
            code = province_code or "\\N"  # COPY's null
            buffer.write(f"{text}\t{normalized}\t{match}\t{code}\tbench\tstolen\tbench\t{now}\t{now}\tt\n")
        buffer.seek(0)
        cur.copy_expert("COPY blacklist_plates (license_plate_text, plate_normalized, match, province_code, "
                        "reason, category, added_by, created_at, updated_at, active) FROM STDIN", buffer)
        # As autovacuum would within a minute of such an import: without statistics the planner reads all
        # 10,000 rows for each batch's plates (1.8 ms a batch) instead of looking them up in the index.
        cur.execute("ANALYZE blacklist_plates")
    return plates


# --- the daemon ----------------------------------------------------------------------------------

class Daemon(processes.Daemon):
    """The real ingest daemon with the bench's settings: production config, open ingest, quiet logs."""

    def __init__(self, database_url: str, image_root: Path, log_path: Path, async_mode: str = "gevent",
                 extra_env: dict | None = None, transport_only: bool = False):
        env = {
            "FLASK_CONFIG": "production", "SECRET_KEY": secrets.token_hex(32),
            "DATABASE_URL": database_url, "IMAGE_STORAGE_PATH": str(image_root),
            "INGEST_AUTH": "open", "LOG_LEVEL": "WARNING", "ASYNC_MODE": async_mode,
            # Every simulated camera connects from this machine: open mode's budget of new cameras per
            # address (60 a minute) would answer most of their first reads `unavailable`.
            "INGEST_NEW_CAMERAS_PER_MINUTE": "100000", **(extra_env or {}),
        }
        # The transport-only daemon answers reads without storing them (bench/transport_daemon.py).
        command = [sys.executable, "-m", "bench.transport_daemon"] if transport_only else None
        super().__init__(env, log_path, command=command)

    @property
    def pid(self) -> int:
        return self.process.pid


# --- checks after a run --------------------------------------------------------------------------

def verify_acked(db: BenchDatabase, image_root: Path, acked: list[tuple[str, str, int]],
                 image_sizes: set[int] | None = None) -> dict:
    """Check every acknowledged read is stored exactly once, with the record_id it was answered with,
    with its image on disk whole and its thumbnail named (the web app makes that file on the thumbnail's
    first view); count files without rows and leftover temp files."""
    with db.connect() as conn, conn.cursor() as cur:
        cur.execute("SELECT id, camera_id, event_id, image_path, thumbnail_path, image_bytes "
                    "FROM lpr_records")
        rows = cur.fetchall()
    by_event: dict[tuple[str, str], list[tuple]] = {}
    for row in rows:
        by_event.setdefault((row[1], row[2]), []).append(row)
    missing = wrong_id = duplicated = missing_image = 0
    for camera_id, event_id, record_id in acked:
        found = by_event.get((camera_id, event_id), [])
        if not found:
            missing += 1
            continue
        duplicated += len(found) > 1
        row = found[0]
        wrong_id += row[0] != record_id
        image = image_root / row[3] if row[3] else None
        if image is None or not image.is_file() or not row[4] or image.stat().st_size != row[5]:
            missing_image += 1
    referenced = {r[3] for r in rows if r[3]} | {r[4] for r in rows if r[4]}
    files = [p for p in image_root.rglob("*") if p.is_file()]
    temp_files = [p for p in files if p.name.endswith(".tmp")]
    orphans = [p for p in files if not p.name.endswith(".tmp")
               and str(p.relative_to(image_root)) not in referenced]
    distinct = len({(c, e) for c, e, _ in acked})
    cameras = {c for c, _, _ in acked}
    return {
        "acked_reads": distinct, "rows_of_these_cameras": sum(r[1] in cameras for r in rows),
        "missing": missing, "wrong_record_id": wrong_id,
        "duplicated": duplicated, "missing_image": missing_image, "orphan_files": len(orphans),
        "temp_files": len(temp_files),
        "ok": missing == wrong_id == duplicated == missing_image == 0,
    }


def percentile(values: list[float], pct: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(pct / 100 * len(ordered) + 0.5) - 1))]


def work_dir() -> str:
    """Where runs keep their images and throwaway PostgreSQL: $LPR_BENCH_DIR, else /var/tmp.

    Not /tmp, where the tests create and delete thousands of files: on ext4 without a journal
    (the development machine) files created soon after many were deleted cost far more (see
    CLEANUP_MARK below).
    """
    path = os.environ.get("LPR_BENCH_DIR", "/var/tmp")
    os.makedirs(path, exist_ok=True)
    return path


# On ext4 without a journal (the development machine's disk) the kernel will not reuse an inode freed
# less than 60 s ago, or 300 s if its inode block is still unwritten, and scans past every such inode
# for each new file (fs/ext4/ialloc.c, find_inode_bit and recently_deleted). Right after a run removed
# its tens of thousands of images, the next run's image writes spent 35 % of the store workers' CPU in
# that scan: ten seconds of 300-500 ms answers at 500 reads/s. Journaled ext4, XFS and tmpfs skip it.
CLEANUP_MARK = ".lpr-bench-cleanup.json"
FRESH_INODE_SECONDS = 300


@contextmanager
def scratch_folder(prefix: str) -> Iterator[Path]:
    """A new folder under work_dir() for one run's files, removed at the end (see remove_tree)."""
    path = Path(tempfile.mkdtemp(prefix=prefix, dir=work_dir()))
    try:
        yield path
    finally:
        remove_tree(path)


def remove_tree(path: str | os.PathLike) -> None:
    """Remove a run's folder and note when and how many files, so the next run can say so."""
    files = sum(len(names) for _, _, names in os.walk(path))
    shutil.rmtree(path, ignore_errors=True)
    now = time.time()
    marks = [m for m in _cleanups() if now - m["at"] < FRESH_INODE_SECONDS] + [{"at": now, "files": files}]
    Path(work_dir(), CLEANUP_MARK).write_text(json.dumps(marks))


def _cleanups() -> list[dict]:
    try:
        marks = json.loads(Path(work_dir(), CLEANUP_MARK).read_text())
        return [{"at": float(m["at"]), "files": int(m["files"])} for m in marks]
    except (OSError, ValueError, KeyError, TypeError):
        return []


def recent_deletion() -> dict | None:
    """The earlier runs' clean-ups of the last FRESH_INODE_SECONDS if they removed many files; warns."""
    now = time.time()
    recent = [m for m in _cleanups() if now - m["at"] < FRESH_INODE_SECONDS]
    files = sum(m["files"] for m in recent)
    if files < 1000:
        return None
    age = now - max(m["at"] for m in recent)
    print(f"warning: earlier runs removed {files} files in {work_dir()} in the last {FRESH_INODE_SECONDS} s, "
          f"the latest {age:.0f} s ago. On ext4 without a journal, creating files stays slow for up to "
          f"{FRESH_INODE_SECONDS} s after that, and this run may start slow (BENCHMARKS.md).",
          file=sys.stderr)
    return {"seconds_ago": round(age), "files": files}


def write_json(name: str, data: dict, path: str | None = None) -> Path:
    """Write results to `path`, or to bench/results/<name>-<UTC time>.json."""
    target = Path(path) if path else RESULTS / f"{name}-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(data, indent=2, ensure_ascii=False, default=str))
    return target


def machine() -> dict:
    """Say what the figures were measured on."""
    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), "unknown")
    load = Path("/proc/loadavg").read_text().split()[:3]
    mem = Path("/proc/meminfo").read_text().splitlines()[0].split()[1]
    return {"cpu": model, "cores": os.cpu_count(), "mem_total_kb": int(mem), "loadavg_at_start": load,
            "python": sys.version.split()[0], "recent_deletion": recent_deletion()}
