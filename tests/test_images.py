import hashlib
import io
from datetime import UTC, datetime

import pytest
from PIL import Image

from lprserver.image_store import ensure_thumbnail
from lprserver.images import (
    FilesystemImageStore,
    ImageRejected,
    check_image,
    decode_image_data,
    make_thumbnail,
)

from .imagegen import b64, data_uri, huge_header_jpeg, make_jpeg, make_png

MAX = 2 * 1024 * 1024
PIXELS = 40_000_000


def test_data_uri_and_bare_base64_decode_to_the_same_bytes():
    jpeg = make_jpeg()
    assert decode_image_data(data_uri(jpeg), MAX) == jpeg
    assert decode_image_data(b64(jpeg), MAX) == jpeg


def test_base64_wrapped_at_76_columns_is_accepted():
    jpeg = make_jpeg()
    text = b64(jpeg)
    wrapped = "\n".join(text[i:i + 76] for i in range(0, len(text), 76))
    assert decode_image_data(wrapped, MAX) == jpeg


@pytest.mark.parametrize("text", [
    "not base64 at all!", "data:text/plain,hello", "", "====", "QUJD*",
    # What strict decoding refuses: padding misplaced, missing, extra or followed by data; a space;
    # characters outside ASCII (a Thai letter, a lone surrogate from a JSON escape).
    "QU=JD", "QUJDRA", "QUJD=", "QUJDRA==QQ==", "QU JD", "QUJDก", "QUJD\ud800",
])
def test_text_that_is_not_base64_is_rejected(text):
    with pytest.raises(ImageRejected):
        decode_image_data(text, MAX)


def test_oversize_base64_is_rejected_before_decoding():
    with pytest.raises(ImageRejected, match="larger than"):
        decode_image_data("A" * (MAX * 2), MAX)


def test_jpeg_is_checked_and_its_thumbnail_is_made_apart():
    jpeg = make_jpeg(640, 480)
    checked = check_image(jpeg, PIXELS)
    assert (checked.extension, checked.width, checked.height) == ("jpg", 640, 480)
    thumb = Image.open(io.BytesIO(make_thumbnail(jpeg)))
    assert thumb.format == "JPEG" and thumb.size == (160, 120)
    png_thumb = Image.open(io.BytesIO(make_thumbnail(make_png())))
    assert png_thumb.format == "JPEG" and max(png_thumb.size) <= 160


def test_a_thumbnail_is_made_once_beside_its_image(tmp_path):
    store = FilesystemImageStore(tmp_path)
    stored = store.save(check_image(make_jpeg(), PIXELS), "CAM001", datetime(2026, 1, 2, tzinfo=UTC))
    assert not (tmp_path / stored.thumbnail_path).exists()  # not while the camera waits (issue 24)
    ensure_thumbnail(store, stored.path, stored.thumbnail_path)
    made = (tmp_path / stored.thumbnail_path).stat()
    ensure_thumbnail(store, stored.path, stored.thumbnail_path)
    assert (tmp_path / stored.thumbnail_path).stat().st_mtime_ns == made.st_mtime_ns
    assert not list(tmp_path.rglob("*.tmp"))
    ensure_thumbnail(store, "2026/01/02/CAM001/gone.jpg", "2026/01/02/CAM001/gone_thumb.jpg")
    assert not (tmp_path / "2026/01/02/CAM001/gone_thumb.jpg").exists()


def test_png_is_kept_as_png():
    png = make_png()
    checked = check_image(png, PIXELS)
    assert checked.extension == "png" and checked.data == png


@pytest.mark.parametrize(
    "data",
    [
        make_jpeg()[: len(make_jpeg()) // 2],  # truncated
        b"\xff\xd8\xff\xe0" + bytes(range(256)) * 40,  # random bytes behind a JPEG signature
        b"GIF89a" + b"\x00" * 100,  # a format we do not take
        make_png()[:60],  # truncated PNG
    ],
    ids=["truncated-jpeg", "random-bytes", "gif", "truncated-png"],
)
def test_broken_or_foreign_images_are_rejected(data):
    with pytest.raises(ImageRejected):
        check_image(data, PIXELS)


@pytest.mark.parametrize("error", [IndexError("tile"), TypeError("bad field"), __import__("struct").error("short")])
def test_any_error_of_pillow_s_parsers_is_a_refused_image(monkeypatch, error):
    # Pillow's plugins raise more than they document on malformed bytes; in the daemon such an
    # error inside a store worker must refuse the one image, not fail (and kill) the whole batch.
    import lprserver.images

    def broken_parser(data):
        raise error

    monkeypatch.setattr(lprserver.images, "_open", broken_parser)
    with pytest.raises(ImageRejected, match=type(error).__name__):
        check_image(make_jpeg(), PIXELS)


def test_pixel_cap_is_checked_before_decoding():
    with pytest.raises(ImageRejected, match="over the limit"):
        check_image(huge_header_jpeg(50_000, 50_000), PIXELS)


def test_store_writes_under_date_and_camera_with_server_chosen_name(tmp_path):
    store = FilesystemImageStore(tmp_path)
    jpeg = make_jpeg()
    stored = store.save(check_image(jpeg, PIXELS), "CAM001", datetime(2026, 1, 2, 23, 59, tzinfo=UTC))
    assert stored.path.startswith("2026/01/02/CAM001/") and stored.path.endswith(".jpg")
    assert (tmp_path / stored.path).read_bytes() == jpeg
    assert stored.sha256 == hashlib.sha256(jpeg).hexdigest()
    assert stored.thumbnail_path == stored.path[:-4] + "_thumb.jpg"
    assert not list(tmp_path.rglob("*.tmp"))


@pytest.mark.parametrize("camera_id", ["../../etc", "..", ".", "a/b", "", "/abs"])
def test_store_refuses_camera_ids_that_would_steer_a_path(tmp_path, camera_id):
    store = FilesystemImageStore(tmp_path)
    with pytest.raises(ValueError):
        store.save(check_image(make_jpeg(), PIXELS), camera_id, datetime.now(UTC))
    assert not any(tmp_path.iterdir())


def test_store_path_refuses_escapes(tmp_path):
    with pytest.raises(ValueError):
        FilesystemImageStore(tmp_path).path("../../etc/passwd")


@pytest.mark.parametrize("sync, failing", [("file", "lprserver.images.os.fsync"),
                                           ("batch", "lprserver.images._syncfs")])
def test_failed_sync_leaves_no_file(tmp_path, monkeypatch, sync, failing):
    store = FilesystemImageStore(tmp_path, sync=sync)
    assert store.sync == sync  # syncfs is there on Linux

    def disk_full(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(failing, disk_full)
    results = store.save_many([(check_image(make_jpeg(), PIXELS), "CAM001"), (None, "CAM001"),
                               (check_image(make_jpeg(seed=2), PIXELS), "CAM002")], datetime.now(UTC))
    assert [type(r) for r in results] == [OSError, type(None), OSError]
    assert "No space" in str(results[0])
    assert not [p for p in tmp_path.rglob("*") if p.is_file()]


@pytest.mark.parametrize("sync", ["batch", "file"])
def test_both_sync_modes_store_whole_files_and_no_temp_files(tmp_path, sync):
    store = FilesystemImageStore(tmp_path, sync=sync)
    jpegs = [make_jpeg(seed=n) for n in range(3)]
    results = store.save_many([(check_image(j, PIXELS), f"CAM00{n}") for n, j in enumerate(jpegs)],
                              datetime(2026, 1, 2, tzinfo=UTC))
    assert [(tmp_path / r.path).read_bytes() for r in results] == jpegs
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == \
        sorted(r.path.rsplit("/", 1)[1] for r in results)


def test_a_store_whose_folder_cannot_be_made_refuses_each_image(tmp_path):
    blocker = tmp_path / "images"
    blocker.write_text("a file where the folder should be")
    results = FilesystemImageStore(blocker, sync="batch").save_many(
        [(check_image(make_jpeg(), PIXELS), "CAM001"), (None, "CAM001")], datetime.now(UTC))
    assert isinstance(results[0], OSError) and results[1] is None


def test_unknown_sync_mode_is_refused(tmp_path):
    with pytest.raises(ValueError, match="batch, file"):
        FilesystemImageStore(tmp_path, sync="never")
