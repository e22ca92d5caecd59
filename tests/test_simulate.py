"""The edge camera simulator: plates, images, and cameras talking to a real ingest daemon."""

import io
import os
import random
import re
import shutil
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from contextlib import closing
from pathlib import Path

import pytest
from PIL import Image

from lprserver.plates import is_valid_normalized, normalize_plate
from lprserver.simulate import (
    PROVINCES,
    SimulationTally,
    camera_tokens,
    plate_box,
    plate_font,
    plate_image,
    random_plate,
    run_simulation,
)

ROOT = Path(__file__).resolve().parents[1]
THAI_SHAPES = (re.compile(r"[ก-ฮ]{2}[1-9]\d{0,3}"), re.compile(r"[1-9][ก-ฮ]{2}[1-9]\d{0,3}"))
LATIN_SHAPE = re.compile(r"[A-Z]{2,3}[1-9]\d{2,3}")
DARK = range(0, 90)


def share(img: Image.Image, box: tuple[int, int, int, int], levels: range) -> float:
    """Return the share of a box's pixels whose grey level is in a range."""
    histogram = img.convert("L").crop(box).histogram()
    return sum(histogram[level] for level in levels) / sum(histogram)


def inner(box: tuple[int, int, int, int], margin: float = 0.08) -> tuple[int, int, int, int]:
    """Return a box shrunk by a margin on every side, to leave out the plate's border."""
    left, top, right, bottom = box
    dx, dy = int((right - left) * margin), int((bottom - top) * margin)
    return left + dx, top + dy, right - dx, bottom - dy


# --- plates and images ---------------------------------------------------------------------------


def test_random_plates_are_thai_with_province_or_latin_without():
    rng = random.Random(7)
    samples = [random_plate(rng) for _ in range(500)]
    thai = [(p, prov) for p, prov in samples if prov is not None]
    latin = [p for p, prov in samples if prov is None]
    assert len(thai) > len(latin) > 0
    assert all(any(shape.fullmatch(p) for shape in THAI_SHAPES) for p, _ in thai)
    assert any(THAI_SHAPES[1].fullmatch(p) for p, _ in thai)
    assert all(prov in PROVINCES for _, prov in thai)
    assert all(LATIN_SHAPE.fullmatch(p) for p in latin)


def test_random_plates_normalise_to_storable_plates():
    rng = random.Random(11)
    for _ in range(300):
        plate, _province = random_plate(rng)
        normalized = normalize_plate(plate)
        assert 1 <= len(normalized) <= 32
        assert is_valid_normalized(normalized)


def test_plate_image_is_a_jpeg_of_the_requested_size():
    data = plate_image("กข1234", "กรุงเทพมหานคร", size=(800, 600))
    with Image.open(io.BytesIO(data)) as img:
        assert img.format == "JPEG"
        assert img.size == (800, 600)
        img.load()


def test_plate_image_draws_dark_text_on_a_white_plate():
    size = (640, 480)
    with Image.open(io.BytesIO(plate_image("1กข234", "เชียงใหม่", size=size))) as img:
        plate = inner(plate_box(size))
        left, top, right, bottom = plate
        text = share(img, plate, DARK)
        province = share(img, (left, top + (bottom - top) * 2 // 3, right, bottom), DARK)
        white = share(img, plate, range(200, 256))
    assert 0.04 < text < 0.5
    assert province > 0.01
    assert white > 0.4


def test_plate_font_has_thai_glyphs():
    font = plate_font(48)
    if "tlwg" not in str(getattr(font, "path", "")):
        pytest.skip("fonts-thai-tlwg is not installed")
    ko_kai, kho_khai = font.getmask("ก"), font.getmask("ข")
    # A font without Thai draws the same missing-glyph box for both.
    assert ko_kai.getbbox() and kho_khai.getbbox()
    assert bytes(ko_kai) != bytes(kho_khai)


def test_plate_image_tunes_toward_a_target_size():
    data = plate_image("ABC1234", target_bytes=40_000)
    assert 40_000 - 4 < len(data) <= 40_000
    with Image.open(io.BytesIO(data)) as img:
        img.load()


def test_one_token_serves_every_camera_and_tokens_match_by_position():
    assert camera_tokens(["t"], 3) == ["t", "t", "t"]
    assert camera_tokens(["a", "b"], 3) == ["a", "b", None]
    assert camera_tokens([], 2) == [None, None]


# --- against the real ingest daemon --------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class IngestDaemon:
    """The real ingest daemon (websocket_server.py) in a subprocess, on SQLite in a temp folder."""

    def __init__(self, folder: Path, schema: Path):
        self.db = folder / "t.db"
        shutil.copy(schema, self.db)
        self.images = folder / "img"
        self.port = free_port()
        self.log = folder / "daemon.log"
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        env = daemon_env(self.db) | {
            "IMAGE_STORAGE_PATH": str(self.images), "INGEST_PORT": str(self.port),
            "INGEST_HOST": "127.0.0.1", "INGEST_AUTH": "open", "LOG_LEVEL": "WARNING",
        }
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen([sys.executable, "websocket_server.py"], cwd=ROOT, env=env,
                                            stdout=log, stderr=subprocess.STDOUT)
        try:
            self._wait_for_port()
        except BaseException:
            self.kill()
            raise

    def kill(self) -> None:
        """Kill -9: no chance to finish a write or send an answer."""
        self.process.kill()
        self.process.wait(10)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)

    def records(self, prefix: str) -> list[tuple]:
        """Return (id, camera_id, event_id, image_path) of the stored reads of cameras PREFIX..."""
        with closing(sqlite3.connect(self.db)) as conn:
            return conn.execute("SELECT id, camera_id, event_id, image_path FROM lpr_records"
                                " WHERE camera_id LIKE ?", (prefix + "%",)).fetchall()

    def _wait_for_port(self) -> None:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the daemon exited: {self.log.read_text()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"the daemon did not listen on {self.port}: {self.log.read_text()}")


def daemon_env(db: Path) -> dict[str, str]:
    return {**os.environ, "DATABASE_URL": f"sqlite:///{db}", "FLASK_CONFIG": "testing"}


@pytest.fixture(scope="module")
def schema(tmp_path_factory) -> Path:
    """An empty database at the current schema, made once with Alembic and copied per test."""
    db = tmp_path_factory.mktemp("schema") / "schema.db"
    subprocess.run([sys.executable, "-m", "alembic", "upgrade", "head"], cwd=ROOT, env=daemon_env(db),
                   check=True, capture_output=True)
    return db


@pytest.fixture(scope="module")
def shared_daemon(tmp_path_factory, schema):
    """A daemon for the tests that leave it running; each uses its own camera prefix."""
    server = IngestDaemon(tmp_path_factory.mktemp("shared"), schema)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def daemon(tmp_path, schema):
    """A daemon of the test's own, for the tests that kill it."""
    server = IngestDaemon(tmp_path, schema)
    server.start()
    yield server
    server.stop()


def test_simulated_cameras_store_every_read_with_its_image(shared_daemon):
    daemon, tally = shared_daemon, SimulationTally()
    summary = run_simulation(daemon.url, 2, 20, 3, [], "E2E", None, timeout=5, tally=tally)

    rows = daemon.records("E2E")
    assert len(rows) == 6
    assert {camera for _, camera, _, _ in rows} == {"E2E001", "E2E002"}
    assert all((daemon.images / image_path).is_file() for *_, image_path in rows)
    assert (tally.sent, tally.acknowledged, tally.resends, dict(tally.errors)) == (6, 6, 0, {})
    assert "6 reads sent, 6 acknowledged" in summary


def test_final_errors_are_counted_by_code_and_not_resent(shared_daemon):
    daemon, tally = shared_daemon, SimulationTally()
    summary = run_simulation(daemon.url, 1, 20, 2, [], "BAD", ["X" * 40], timeout=5, tally=tally)

    assert daemon.records("BAD") == []
    assert (tally.acknowledged, tally.resends, dict(tally.errors)) == (0, 0, {"invalid_plate": 2})
    assert "invalid_plate 2" in summary


def test_reads_survive_a_daemon_crash_without_duplicates(daemon):
    tally, reads = SimulationTally(), 2 * 15
    run = threading.Thread(target=run_simulation, args=(daemon.url, 2, 10, 15, [], "CRASH", None),
                           kwargs={"timeout": 2, "tally": tally})
    run.start()
    deadline = time.monotonic() + 10
    while tally.acknowledged < 4 and time.monotonic() < deadline:
        time.sleep(0.02)
    daemon.kill()
    time.sleep(0.3)
    daemon.start()
    run.join(30)

    assert not run.is_alive()
    assert tally.resends > 0
    assert (tally.sent, tally.acknowledged, dict(tally.errors)) == (reads, reads, {})
    rows = daemon.records("CRASH")
    stored = {(camera, event): record_id for record_id, camera, event, _ in rows}
    assert len(stored) == len(rows) == reads
    assert all(stored[(camera, event)] == record_id for camera, event, record_id in tally.acknowledged_events)
    assert all((daemon.images / image_path).is_file() for *_, image_path in rows)


def test_simulated_cameras_write_provinces_as_real_cameras_do_and_the_server_reads_them_all():
    from lprserver.plates import parse_plate
    from lprserver.simulate import as_cameras_send

    sent = {as_cameras_send("1กข1234", "กรุงเทพมหานคร", f"SIM{n:03d}") for n in range(40)}
    assert ("1กข1234 กรุงเทพมหานคร", None) in sent and ("1กข1234", "BANGKOK") in sent
    assert ("1กข1234", "TH-10") in sent and ("1กข1234 กทม", None) in sent
    for text, field in sent:
        parsed = parse_plate(text, field)
        assert (parsed.normalized, parsed.province_code) == ("1กข1234", "TH-10")
