"""Image checks and the filesystem image store (save / open / delete / path); image_store.py picks
the store IMAGE_STORE names (SPEC §14), this one or an object store."""

import binascii
import ctypes
import hashlib
import io
import logging
import os
import re
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import BinaryIO

import pybase64
from PIL import Image

from .cameras import CAMERA_ID_REGEX
from .image_cost import ImageRejected, check_cost

log = logging.getLogger("lprserver.images")

# Shown at 96x72 CSS pixels (192x144 on a 2x screen); a 640x480 camera image decodes
# straight to this size at 1/4 scale, with no resampling. Made by the web app on a thumbnail's first
# view and kept beside its image (make_thumbnail), not while a camera waits for its answer (issue 24).
THUMBNAIL_SIZE = (160, 120)
# The ingest check decodes a JPEG at libjpeg's smallest scale, 1/8: every byte of the stream is still
# entropy-decoded (a truncated or corrupt file is refused, SPEC §2.4), with the least IDCT and colour work.
_CHECK_DRAFT_SIZE = (1, 1)
ALLOWED_FORMATS = {"JPEG": "jpg", "PNG": "png"}
_DATA_URI = re.compile(r"data:image/[a-zA-Z0-9.+-]+;base64,", re.ASCII)
_CAMERA_DIR = re.compile(CAMERA_ID_REGEX, re.ASCII)
# How a batch's files are made durable before its rows are committed (IMAGE_SYNC):
# Each image is written to a temp name and renamed into place; then
# "batch": one syncfs(2) of the image folder's file system after the whole batch is written;
# "file": an fsync of each image before its rename, and of each folder after.
SYNC_MODES = ("batch", "file")


@dataclass(frozen=True)
class CheckedImage:
    data: bytes
    extension: str
    width: int
    height: int
    sha256: str

    def check(self) -> "CheckedImage":
        """Already checked (as `SentImage.check` gives it)."""
        return self


@dataclass(frozen=True)
class SentImage:
    """An image as a camera sent it (bare base64 or a data URI), checked where it is written.

    The ingest daemon hands these to its store worker processes, so that decoding the
    base64 and the JPEG (about 1.5 ms of CPU per 40 KB image here) never takes the daemon's GIL.
    """

    text: str
    max_bytes: int
    max_pixels: int

    def check(self) -> CheckedImage:
        """Decode and check the image; raise ImageRejected if it is not one we keep."""
        return check_image(decode_image_data(self.text, self.max_bytes), self.max_pixels)


@dataclass(frozen=True)
class StoredImage:
    path: str
    thumbnail_path: str
    sha256: str
    size: int


@dataclass(frozen=True)
class StoredFile:
    """One file (or object) of a store, as the orphan sweep sees it."""

    key: str  # as records name it: YYYY/MM/DD/<camera_id>/<name>
    modified: float  # Unix seconds
    size: int


class ImageStoreUnavailable(OSError):
    """The image store cannot take (or give) a file now; the read answers `unavailable` (SPEC §2.4)."""


MEDIA_TYPES = {"jpg": "image/jpeg", "png": "image/png"}


def media_type(key: str) -> str:
    """The content type of a stored image by its name (the store names them by format)."""
    return MEDIA_TYPES.get(key.rsplit(".", 1)[-1].lower(), "application/octet-stream")


def check_folder_name(camera_id: str) -> None:
    """Refuse a camera id that is not safe as a folder name (the door checked it; this is a second wall)."""
    if not _CAMERA_DIR.fullmatch(camera_id) or camera_id in (".", ".."):
        raise ValueError(f"unsafe camera id for a path: {camera_id!r}")


def new_keys(camera_id: str, received_at: datetime, extension: str) -> tuple[str, str]:
    """The names of a new image and its thumbnail: YYYY/MM/DD/<camera_id>/<random>.<ext> (SPEC §4), the
    UTC day the server received it, never anything the camera named but its (checked) id."""
    check_folder_name(camera_id)
    folder = f"{received_at.strftime('%Y/%m/%d')}/{camera_id}"
    name = uuid.uuid4().hex
    return f"{folder}/{name}.{extension}", f"{folder}/{name}_thumb.jpg"


def decode_image_data(text: str, max_bytes: int) -> bytes:
    """Return the bytes of bare base64 or a base64 data URI, refusing oversize input before decoding."""
    match = _DATA_URI.match(text)
    if match:
        text = text[match.end():]
    elif text.startswith("data:"):
        raise ImageRejected("image_data is a data URI but not a base64 image")
    if len(text) > (max_bytes + 2) // 3 * 4 + 1024:
        raise ImageRejected(f"image is larger than the limit of {max_bytes} bytes")
    if "\n" in text or "\r" in text:
        text = text.replace("\r", "").replace("\n", "")
    try:
        # pybase64 (SIMD) decodes and validates a 53 KB image in 4 us here, binascii's strict mode in
        # 120 us; the file writers' CPU per read fell from 1.93 to 1.64 ms (BENCHMARKS.md). Both refuse
        # any character outside the alphabet and misplaced or missing padding.
        data = pybase64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ImageRejected("image_data is not valid base64") from None
    if not data:
        raise ImageRejected("image_data is empty")
    if len(data) > max_bytes:
        raise ImageRejected(f"image is larger than the limit of {max_bytes} bytes")
    return data


def check_image(data: bytes, max_pixels: int) -> CheckedImage:
    """Open the bytes as JPEG or PNG and decode them whole (a JPEG at a reduced scale); the thumbnail
    is made later, on its first view (`make_thumbnail`)."""
    try:
        with _open(data) as img:
            width, height = img.size
            if width * height > max_pixels:
                raise ImageRejected(f"image is {width}x{height}, over the limit of {max_pixels} pixels")
            extension = ALLOWED_FORMATS[img.format]
            check_cost(data, img.format, width, height)  # before any pixel is decoded
            # draft() lets libjpeg decode at a reduced scale: it still reads every
            # byte of the stream, so truncation is caught, at a fraction of the cost.
            img.draft("RGB", _CHECK_DRAFT_SIZE)
            img.load()
    except ImageRejected:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageRejected(f"image is over the limit of {max_pixels} pixels") from None
    except Exception as exc:  # noqa: BLE001 - Pillow's parsers raise many kinds on malformed bytes
        # OSError, SyntaxError and ValueError are what Pillow documents; a parser may also raise
        # IndexError, struct.error or TypeError. The bytes are the camera's, so any of them is a
        # refused image, never a failed batch (in the daemon this runs in a store worker process).
        raise ImageRejected(f"image is not a complete JPEG or PNG ({exc.__class__.__name__})") from None
    return CheckedImage(data, extension, width, height, hashlib.sha256(data).hexdigest())


def make_thumbnail(data: bytes) -> bytes:
    """A JPEG of at most THUMBNAIL_SIZE from a stored image (checked when it was received)."""
    with _open(data) as img:
        img.draft("RGB", THUMBNAIL_SIZE)
        img.load()
        return _thumbnail(img)


def warm_up() -> None:
    """Check one small JPEG, so that a new process's first camera image does not load Pillow's plugins."""
    out = io.BytesIO()
    Image.new("RGB", (64, 48), (90, 120, 150)).save(out, "JPEG")
    check_image(out.getvalue(), 64 * 48)


def _open(data: bytes) -> Image.Image:
    # Our pixel limit (below Pillow's own) is checked right after the header is
    # read. Pillow may still warn about a bomb first; no warnings filter is changed
    # here because this runs in several threads at once.
    return Image.open(io.BytesIO(data), formats=list(ALLOWED_FORMATS))


def _thumbnail(img: Image.Image) -> bytes:
    # Shrunk first, in place (the decoded image is not used after this; a no-op when it fits), then
    # converted: a PNG's full frame is never copied once more to change its mode.
    img.thumbnail(THUMBNAIL_SIZE)
    small = img.convert("RGB") if img.mode != "RGB" else img
    out = io.BytesIO()
    small.save(out, "JPEG", quality=70)
    return out.getvalue()


def run_each(function: Callable, items: list) -> list:
    """Apply function to each item in turn (the daemon passes one that uses many threads)."""
    return [function(item) for item in items]


def thread_map(async_mode: str, threads: int = 16) -> Callable[[Callable, list], list]:
    """Return a `map_blocking` that runs the image work on OS threads, so that an event loop (the
    daemon's, the web app's gevent worker) never waits for a decode or a file: Pillow and the file
    calls let go of the GIL. Concurrent fsyncs are also merged by the disk into few journal commits."""
    if async_mode == "eventlet":
        import eventlet
        from eventlet import tpool

        green = eventlet.GreenPool(threads)

        def green_map(function: Callable, items: list) -> list:
            return list(green.imap(lambda item: tpool.execute(function, item), items))

        return green_map
    if async_mode != "gevent":
        return run_each
    from gevent.threadpool import ThreadPool

    pool = ThreadPool(threads)

    def pool_map(function: Callable, items: list) -> list:
        return pool.map(function, items)

    return pool_map


def io_map(async_mode: str, size: int = 16) -> Callable[[Callable, list], list] | None:
    """Return a `map_io` that runs network calls (an object store's uploads) `size` at once as
    greenlets in a process gevent or eventlet patched; None elsewhere (the store uses OS threads)."""
    if async_mode == "eventlet":
        import eventlet

        green = eventlet.GreenPool(size)
        return lambda function, items: list(green.imap(function, items))
    if async_mode == "gevent":
        from gevent.pool import Pool

        pool = Pool(size)
        return lambda function, items: pool.map(function, items)
    return None


class FilesystemImageStore:
    """Keeps images under root/YYYY/MM/DD/<camera_id>/ with server-chosen names.

    `map_blocking(function, items)` runs the file work of a batch; the ingest daemon
    passes one that spreads it over a pool of OS threads, so its event loop never
    waits on the filesystem (and, with `sync="file"`, the disk merges the concurrent
    fsyncs into few journal commits).

    `sync` is one of SYNC_MODES. "batch" makes a batch durable with one syncfs(2)
    instead of an fsync per image and one per folder: less than half the kernel CPU
    per image here, and no thread waits on an fsync (BENCHMARKS.md). It covers the
    file system the root is on only, and also flushes whatever else is unwritten
    there, so a root with other disks mounted below it, or shared with heavy
    unrelated writes, is better served by "file". Where syncfs is missing (not
    Linux) it is "file".
    """

    kind = "filesystem"

    def __init__(self, root: str | os.PathLike, map_blocking: Callable[[Callable, list], list] = run_each,
                 sync: str = "batch"):
        if sync not in SYNC_MODES:
            raise ValueError(f"unknown image sync mode {sync!r}: one of {', '.join(SYNC_MODES)}")
        self.root = Path(root).resolve()
        self.map_blocking = map_blocking
        self.sync = sync if _SYNCFS is not None else "file"

    @classmethod
    def from_config(cls, config, map_blocking: Callable[[Callable, list], list] = run_each,
                    map_io: Callable[[Callable, list], list] | None = None) -> "FilesystemImageStore":
        """The store of IMAGE_STORAGE_PATH and IMAGE_SYNC (`map_io` is the object store's: unused here)."""
        return cls(config["IMAGE_STORAGE_PATH"], map_blocking, config["IMAGE_SYNC"])

    def save(self, image: CheckedImage | SentImage, camera_id: str, received_at: datetime) -> StoredImage:
        """Check one image, then write it durably (temp file, rename, synced as `sync` says); its
        thumbnail's name is kept with the row, the file made on its first view."""
        result = self.save_many([(image, camera_id)], received_at)[0]
        if isinstance(result, (OSError, ImageRejected)):
            raise result
        return result

    def save_many(self, jobs: list[tuple[CheckedImage | SentImage | None, str]],
                  received_at: datetime) -> list[StoredImage | OSError | ImageRejected | None]:
        """Check and write several images durably; per job its StoredImage, the ImageRejected or
        OSError that refused it, or None when it had no image. Nothing is returned as stored
        before it is on disk (see `sync`); on a failure nothing of the image stays behind, and
        what a crash leaves half-written has no row, so the orphan sweep removes it."""
        try:
            # Opened before the writes: syncfs reports the write-back errors that came after.
            root_fd = self._open_root() if self.sync == "batch" else None
        except OSError as exc:
            return [exc if image is not None else None for image, _ in jobs]
        try:
            results = self.map_blocking(lambda job: self._save_one(job[0], job[1], received_at), jobs)
            stored = [r for r in results if isinstance(r, StoredImage)]
            try:
                if root_fd is None:
                    self.map_blocking(_sync_directory, sorted({(self.root / r.path).parent for r in stored}))
                elif stored:
                    self.map_blocking(_syncfs, [root_fd])
            except OSError as exc:
                for r in stored:
                    self.delete(r.path, r.thumbnail_path)
                return [exc if isinstance(r, StoredImage) else r for r in results]
            return results
        finally:
            if root_fd is not None:
                os.close(root_fd)

    def _open_root(self) -> int:
        self.root.mkdir(parents=True, exist_ok=True)
        return os.open(self.root, os.O_RDONLY | os.O_DIRECTORY)

    def _save_one(self, sent: CheckedImage | SentImage | None, camera_id: str,
                  received_at: datetime) -> StoredImage | OSError | ImageRejected | None:
        if sent is None:
            return None
        check_folder_name(camera_id)
        try:
            image = sent.check()
        except ImageRejected as exc:
            return exc
        key, thumb_key = new_keys(camera_id, received_at, image.extension)
        rel, thumb_rel = Path(key), Path(thumb_key)
        name = rel.stem
        directory = self.root / rel.parent
        try:
            directory.mkdir(parents=True, exist_ok=True)
            # Renamed into place whole (README "Sending reads": durable before the answer); with sync="batch"
            # made durable with the whole batch by save_many's syncfs before anything is committed, with
            # "file" fsync'd first.
            _write_into_place(directory / f".{name}.{image.extension}.tmp", self.root / rel, image.data,
                              fsync=self.sync == "file")
        except OSError as exc:
            return exc
        return StoredImage(str(rel), str(thumb_rel), image.sha256, len(image.data))

    def path(self, rel: str) -> Path:
        """Return the absolute path of a stored image, refusing anything outside the store."""
        full = (self.root / rel).resolve()
        if not full.is_relative_to(self.root):
            raise ValueError(f"path escapes the image store: {rel!r}")
        return full

    def delete(self, *rels: str | None) -> None:
        """Remove stored files; missing ones are not an error."""
        for rel in rels:
            if rel:
                try:
                    self.path(rel).unlink()
                except FileNotFoundError:
                    pass

    def delete_counted(self, keys: list[str]) -> tuple[int, int]:
        """Remove stored files; return how many were there and their bytes. Missing ones are skipped,
        and one that cannot be removed is logged and skipped (retention, erase)."""
        files = size = 0
        for key in keys:
            try:
                path = self.path(key)
                bytes_ = path.stat().st_size
                path.unlink()
            except FileNotFoundError:
                continue
            except (OSError, ValueError) as exc:
                log.warning("event=image_delete_failed path=%s error=%r", key, str(exc))
                continue
            files, size = files + 1, size + bytes_
        return files, size

    def local_path(self, key: str) -> Path:
        """The file on this machine (the web app hands it to send_file or nginx)."""
        return self.path(key)

    def open(self, key: str) -> BinaryIO:
        """The stored file, to read; FileNotFoundError when it is gone."""
        return self.path(key).open("rb")

    def stream(self, key: str) -> tuple[BinaryIO, int]:
        """The stored file, to read, and its size."""
        file = self.open(key)
        return file, os.fstat(file.fileno()).st_size

    def save_thumbnail(self, key: str, data: bytes) -> None:
        """Write a thumbnail (JPEG) beside its image (not fsync'd: it can be made again). Two web workers
        making the same one at once each write a temp file and rename it: the last one stays, whole."""
        path = self.path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        _write_into_place(path.parent / f".{path.name}.{uuid.uuid4().hex}.tmp", path, data, fsync=False)

    def read(self, key: str) -> bytes:
        return self.path(key).read_bytes()

    def exists(self, key: str) -> bool:
        try:
            return self.path(key).is_file()
        except ValueError:
            return False

    def missing(self, keys: list[str]) -> set[str]:
        """Which of these files are gone."""
        return {key for key in keys if not self.exists(key)}

    def files(self) -> Iterator[tuple[str, list[StoredFile]]]:
        """Every file, folder by folder: (the folder relative to the root, its files)."""
        for folder, _dirs, names in os.walk(self.root):
            if not names:
                continue
            rel_folder = Path(folder).relative_to(self.root)
            found = []
            for name in names:
                try:
                    stat = (Path(folder) / name).stat()
                except FileNotFoundError:
                    continue
                found.append(StoredFile(str(rel_folder / name), stat.st_mtime, stat.st_size))
            yield str(rel_folder), found

    def used_bytes(self) -> int:
        """The bytes of every file under the root (IMAGE_DISK_BUDGET_GB)."""
        total = 0
        for folder, _dirs, names in os.walk(self.root):
            for name in names:
                try:
                    total += os.lstat(os.path.join(folder, name)).st_size
                except FileNotFoundError:
                    pass
        return total

    def health(self, min_free_mb: int) -> tuple[str, dict]:
        """The /health check of this store: free space and writability of the image folder."""
        return "image_disk", disk_check(str(self.root), min_free_mb)


def disk_check(path: str, min_free_mb: int) -> dict:
    """Free space and writability of the image folder (the web app's and the daemon's /health)."""
    try:
        free = shutil.disk_usage(path).free
    except OSError:
        return {"ok": False, "free_mb": None, "writable": False}
    writable = _writable(path)
    return {"ok": writable and free >= min_free_mb * 1024 * 1024, "free_mb": free // (1024 * 1024),
            "writable": writable}


def _writable(path: str) -> bool:
    """Tell whether a byte can be written in the image folder (read-only mount, permissions, disk full)."""
    try:
        # An unnamed file (O_TMPFILE where the filesystem has it): nothing is left behind, even on a crash.
        with tempfile.TemporaryFile(dir=path) as probe:
            probe.write(b"\0")
            probe.flush()
    except OSError:
        return False
    return True


def _write_new(path: Path, data: bytes) -> int:
    """Create path (never an existing file), write data, return the open descriptor."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
    except BaseException:
        os.close(fd)
        path.unlink(missing_ok=True)
        raise
    return fd


def _write_into_place(tmp: Path, target: Path, data: bytes, fsync: bool) -> None:
    """Write a temp file, fsync it if asked, rename it into place: the target is whole or absent."""
    fd = _write_new(tmp, data)
    try:
        try:
            if fsync:
                os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _load_syncfs() -> Callable[[int], int] | None:
    try:
        # glibc and musl on Linux have it; a ctypes call lets go of the GIL.
        syncfs = ctypes.CDLL(None, use_errno=True).syncfs
    except (OSError, AttributeError):
        return None
    syncfs.argtypes, syncfs.restype = [ctypes.c_int], ctypes.c_int
    return syncfs


_SYNCFS = _load_syncfs()


def _syncfs(fd: int) -> None:
    """Write out everything unwritten on fd's file system; an error since fd was opened raises
    (Linux 5.8 and later report write-back errors this way)."""
    if _SYNCFS(fd) != 0:
        error = ctypes.get_errno()
        raise OSError(error, f"syncfs: {os.strerror(error)}")


def _sync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)

