"""File writers: real helper processes that write a batch's images for the daemon."""

import os
import signal
from datetime import UTC, datetime
from pathlib import Path

import pytest

from lprserver.images import ImageRejected, SentImage, StoredImage, check_image
from lprserver.ingest.file_writer import FileWriterStore

from .imagegen import data_uri, make_jpeg

PIXELS = 40_000_000
WHEN = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


@pytest.fixture(params=["batch", "file"])
def store(tmp_path, request):
    """One real writer process, in each IMAGE_SYNC mode."""
    writers = FileWriterStore(str(tmp_path), writers=1, sync=request.param)
    assert writers.sync == request.param
    yield writers
    writers.stop()


def _files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def test_a_batch_is_written_byte_for_byte_with_thumbnails(store, tmp_path):
    jpegs = [make_jpeg(640, 480), make_jpeg(320, 240)]
    results = store.save_many([(check_image(jpegs[0], PIXELS), "CAM001"), (None, "CAM002"),
                               (check_image(jpegs[1], PIXELS), "CAM002")], WHEN)
    first, nothing, second = results
    assert nothing is None and isinstance(first, StoredImage) and isinstance(second, StoredImage)
    assert (tmp_path / first.path).read_bytes() == jpegs[0] and (tmp_path / second.path).read_bytes() == jpegs[1]
    assert _files(tmp_path) == sorted([first.path, first.thumbnail_path, second.path, second.thumbnail_path])


def test_the_writer_decodes_and_checks_what_cameras_sent(store, tmp_path):
    jpeg = make_jpeg(640, 480)
    sent = [SentImage(data_uri(jpeg), 2_000_000, PIXELS),
            SentImage(data_uri(jpeg[:-2000]), 2_000_000, PIXELS),      # truncated
            SentImage("not base64!!", 2_000_000, PIXELS),
            SentImage(data_uri(jpeg), 1_000, PIXELS)]                   # over IMAGE_MAX_BYTES
    good, cut, garbage, big = store.save_many([(image, "CAM001") for image in sent], WHEN)
    assert isinstance(good, StoredImage) and (tmp_path / good.path).read_bytes() == jpeg
    assert all(isinstance(r, ImageRejected) for r in (cut, garbage, big))
    assert "complete JPEG" in str(cut) and "base64" in str(garbage) and "limit of 1000 bytes" in str(big)
    assert _files(tmp_path) == sorted([good.path, good.thumbnail_path])


def test_an_image_that_cannot_be_written_fails_alone(store, tmp_path):
    (tmp_path / "2026" / "11" / "29").mkdir(parents=True)
    (tmp_path / "2026" / "11" / "29" / "BLOCKED").write_text("a file where the camera's folder goes")
    image = check_image(make_jpeg(), PIXELS)
    good, blocked = store.save_many([(image, "GOOD"), (image, "BLOCKED")], WHEN)
    assert isinstance(good, StoredImage) and isinstance(blocked, OSError)
    assert not list(tmp_path.rglob("*.tmp"))


def test_a_writer_that_dies_fails_its_batch_and_is_replaced(store, tmp_path):
    image = check_image(make_jpeg(), PIXELS)
    writer = store.idle.get_nowait()
    os.kill(writer.process.pid, signal.SIGKILL)
    writer.process.wait()
    store.idle.put(writer)
    failed = store.save_many([(image, "CAM001")], WHEN)
    assert isinstance(failed[0], OSError)  # answered `unavailable`: the camera sends it again
    again = store.save_many([(image, "CAM001")], WHEN)
    assert isinstance(again[0], StoredImage) and (tmp_path / again[0].path).exists()


def test_a_writer_exits_when_the_daemon_goes(tmp_path):
    store = FileWriterStore(str(tmp_path), writers=1)
    writer = store.idle.get_nowait()
    writer.sock.close()  # what the kernel does when the daemon is killed
    assert writer.process.wait(timeout=10) == 0
