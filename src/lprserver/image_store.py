"""The image store, chosen by IMAGE_STORE (SPEC §14 "Images on an object store") from IMAGE_STORES:
`filesystem` (images.py, the default: files under IMAGE_STORAGE_PATH) or `s3` (an S3-compatible object
store such as MinIO, here, through boto3).

Both keep a read's image and thumbnail under the same keys — YYYY/MM/DD/<camera_id>/<name>.<ext> and
<name>_thumb.jpg, as the records' image_path and thumbnail_path name them — so a folder copies into a
bucket as it is (README "Images on an object store"). Both answer the same calls:

    save / save_many        check images and keep them durably (the read is answered after this)
    save_thumbnail          keep a thumbnail, made on its first view (ensure_thumbnail)
    delete / delete_counted remove files (best effort / counted, for retention and erase)
    stream / open / read    read a file back (web app, alert e-mails, exports)
    exists / missing        whether files are there (the missing-file sweep)
    files / used_bytes      every file, folder by folder (the orphan sweep), the bytes used (disk budget)
    local_path / health     the file on this machine (filesystem only) / the /health check
"""

import base64
import hashlib
import logging
import re
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import BinaryIO, Protocol

from .images import (
    CheckedImage,
    FilesystemImageStore,
    ImageRejected,
    ImageStoreUnavailable,
    SentImage,
    StoredFile,
    StoredImage,
    check_folder_name,
    make_thumbnail,
    media_type,
    new_keys,
    run_each,
)

log = logging.getLogger("lprserver.images")

# Two attempts in all: a store that refuses connections answers `unavailable` in well under a second; one
# that takes them and never answers in about 2 x (1 + S3_TIMEOUT) s for a PUT (botocore waits up to 1 s for
# "100 Continue" before it sends the body), 2 x S3_TIMEOUT for the other calls.
S3_ATTEMPTS = 2
S3_IO_THREADS = 16  # a batch's uploads at once (64 reads are 128 objects)
DELETE_CHUNK = 1000  # S3's limit of keys per DeleteObjects
# The keys images.new_keys makes: YYYY/MM/DD/<camera_id>/<32 hex digits>[_thumb].<jpg|png>
_OUR_KEY = re.compile(r"\d{4}/\d{2}/\d{2}/[A-Za-z0-9_.-]{1,64}/[0-9a-f]{32}(_thumb)?\.(jpg|png)", re.ASCII)



class ImageStore(Protocol):
    """What every store answers (the list above); FilesystemImageStore and S3ImageStore are the two."""

    kind: str

    def save_many(self, jobs: list[tuple[CheckedImage | SentImage | None, str]],
                  received_at: datetime) -> list[StoredImage | OSError | ImageRejected | None]: ...
    def save_thumbnail(self, key: str, data: bytes) -> None: ...
    def delete(self, *keys: str | None) -> None: ...
    def delete_counted(self, keys: list[str]) -> tuple[int, int]: ...
    def local_path(self, key: str) -> Path | None: ...
    def stream(self, key: str) -> tuple[BinaryIO, int]: ...
    def open(self, key: str) -> BinaryIO: ...
    def read(self, key: str) -> bytes: ...
    def exists(self, key: str) -> bool: ...
    def missing(self, keys: list[str]) -> set[str]: ...
    def files(self) -> Iterator[tuple[str, list[StoredFile]]]: ...
    def used_bytes(self) -> int | None: ...
    def health(self, min_free_mb: int) -> tuple[str, dict]: ...


def _check(job: tuple[CheckedImage | SentImage | None, str]) -> CheckedImage | ImageRejected | None:
    sent, camera_id = job
    if sent is None:
        return None
    check_folder_name(camera_id)
    try:
        return sent.check()
    except ImageRejected as exc:
        return exc


class S3ImageStore:
    """Keeps images as objects of one bucket of an S3-compatible store (SPEC §14).

    A write is done when the store answered the PUT (an object store's answer means it is durable);
    a store that is down, slow past `timeout` or refusing makes the image an ImageStoreUnavailable
    (an OSError, as a full disk is), so its read answers `unavailable` and nothing of it is kept.

    `map_blocking(function, items)` runs the image checks (CPU: the JPEG decodes), as for the
    filesystem store; `map_io` runs the uploads, many at once: threads in a store worker, greenlets
    in a process that gevent or eventlet patched (images.io_map). The keys are read by boto3 itself
    from its standard places (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_DEFAULT_REGION, or an
    instance role): they never pass through this program's settings or logs.
    """

    kind = "s3"

    def __init__(self, bucket: str, endpoint_url: str = "", timeout: float = 3.0,
                 map_blocking: Callable[[Callable, list], list] = run_each,
                 map_io: Callable[[Callable, list], list] | None = None):
        if not bucket:
            raise ValueError("an S3 image store needs a bucket (S3_BUCKET)")
        self.bucket, self.endpoint_url, self.timeout = bucket, endpoint_url, timeout
        self.map_blocking = map_blocking
        self._map_io = map_io
        self._client = None
        self._lock = threading.Lock()

    @classmethod
    def from_config(cls, config, map_blocking: Callable[[Callable, list], list] = run_each,
                    map_io: Callable[[Callable, list], list] | None = None) -> "S3ImageStore":
        return cls(config["S3_BUCKET"], config["S3_ENDPOINT_URL"], config["S3_TIMEOUT"], map_blocking, map_io)

    @property
    def client(self):
        """The boto3 client, made on first use (boto3 takes ~0.3 s to import; clients are thread-safe)."""
        if self._client is None:
            with self._lock:
                if self._client is None:
                    self._client = _make_client(self.endpoint_url, self.timeout)
        return self._client

    def map_io(self, function: Callable, items: list) -> list:
        if len(items) <= 1:
            return [function(item) for item in items]
        if self._map_io is None:
            with self._lock:
                if self._map_io is None:
                    pool = ThreadPoolExecutor(S3_IO_THREADS, thread_name_prefix="s3-io")
                    self._map_io = lambda fn, xs: list(pool.map(fn, xs))
        return self._map_io(function, items)

    # --- writes ---

    def save(self, image: CheckedImage | SentImage, camera_id: str, received_at: datetime) -> StoredImage:
        """Check one image, then keep it."""
        result = self.save_many([(image, camera_id)], received_at)[0]
        if isinstance(result, (OSError, ImageRejected)):
            raise result
        return result

    def save_many(self, jobs: list[tuple[CheckedImage | SentImage | None, str]],
                  received_at: datetime) -> list[StoredImage | OSError | ImageRejected | None]:
        """Check several images, then upload each (its thumbnail is made on its first view); per job what
        FilesystemImageStore.save_many gives. An image the store took but whose read then fails is
        deleted by the pipeline, or else found by the orphan sweep."""
        checked = self.map_blocking(_check, jobs)
        return self.map_io(lambda item: self._put_image(item[0], item[1], received_at),
                           [(image, camera_id) for image, (_, camera_id) in zip(checked, jobs, strict=True)])

    def _put_image(self, image: CheckedImage | ImageRejected | None, camera_id: str,
                   received_at: datetime) -> StoredImage | OSError | ImageRejected | None:
        if not isinstance(image, CheckedImage):
            return image
        key, thumb_key = new_keys(camera_id, received_at, image.extension)
        try:
            self._put(key, image.data)
        except ImageStoreUnavailable as exc:
            return exc
        return StoredImage(key, thumb_key, image.sha256, len(image.data))

    def save_thumbnail(self, key: str, data: bytes) -> None:
        """Keep a thumbnail (JPEG) under `key`; ImageStoreUnavailable when the store did not take it."""
        self._put(key, data)

    def _put(self, key: str, data: bytes) -> None:
        # Content-MD5: the store refuses a body that arrived damaged (every S3-compatible store checks
        # it; the newer x-amz-checksum-* headers are not known to all of them).
        md5 = base64.b64encode(hashlib.md5(data, usedforsecurity=False).digest()).decode()
        self._call("put_object", Bucket=self.bucket, Key=key, Body=data, ContentType=media_type(key),
                   ContentMD5=md5)

    def delete(self, *keys: str | None) -> None:
        """Remove objects, best effort: a store that is down leaves them to the orphan sweep."""
        self.delete_counted([key for key in keys if key])

    def delete_counted(self, keys: list[str]) -> tuple[int, int]:
        """Remove objects; return (how many the store says it deleted, 0). S3 tells neither whether an
        object was there nor its size, so retention's bytes_freed counts only the filesystem store."""
        deleted = 0
        keys = [key for key in keys if key]
        for start in range(0, len(keys), DELETE_CHUNK):
            part = keys[start:start + DELETE_CHUNK]
            try:
                answer = self._call("delete_objects", Bucket=self.bucket,
                                    Delete={"Objects": [{"Key": key} for key in part], "Quiet": False})
            except ImageStoreUnavailable as exc:
                log.warning("event=image_delete_failed objects=%d error=%r", len(part), str(exc))
                continue
            deleted += len(answer.get("Deleted", []))
            for error in answer.get("Errors", []):
                log.warning("event=image_delete_failed path=%s error=%r", error.get("Key"), error.get("Code"))
        return deleted, 0

    # --- reads ---

    def local_path(self, key: str) -> None:
        """Objects are not files on this machine: the web app streams them (api/records.py)."""
        return None

    def stream(self, key: str) -> tuple[BinaryIO, int]:
        """The object to read, and its size; FileNotFoundError when it is gone."""
        answer = self._call("get_object", Bucket=self.bucket, Key=key)
        return answer["Body"], answer["ContentLength"]

    def open(self, key: str) -> BinaryIO:
        return self.stream(key)[0]

    def read(self, key: str) -> bytes:
        body = self.open(key)
        try:
            return body.read()
        except Exception as exc:  # noqa: BLE001 - urllib3 and botocore raise several kinds mid-body
            raise ImageStoreUnavailable(f"reading {key}: {exc.__class__.__name__}") from None
        finally:
            body.close()

    def exists(self, key: str) -> bool:
        """Whether the object is there; ImageStoreUnavailable when the store cannot say."""
        try:
            self._call("head_object", Bucket=self.bucket, Key=key)
        except FileNotFoundError:
            return False
        return True

    def missing(self, keys: list[str]) -> set[str]:
        """Which of these objects are gone (one HEAD each, many at once)."""
        return {key for key, there in zip(keys, self.map_io(self.exists, keys), strict=True) if not there}

    def files(self) -> Iterator[tuple[str, list[StoredFile]]]:
        """Every object named as this store names them, folder by folder (a listing is in key order, so a
        folder's objects come together). Anything else in the bucket is never offered to the orphan
        sweep: an admin's own objects there are left alone."""
        folder, found = None, []
        for page in self._pages():
            for item in page.get("Contents", []):
                key = item["Key"]
                if not _OUR_KEY.fullmatch(key):
                    continue
                parent = key.rsplit("/", 1)[0]
                if parent != folder and found:
                    yield folder, found
                    found = []
                folder = parent
                found.append(StoredFile(key, item["LastModified"].timestamp(), item["Size"]))
        if found:
            yield folder, found

    def _pages(self) -> Iterator[dict]:
        token = None
        while True:
            args = {"Bucket": self.bucket, **({"ContinuationToken": token} if token else {})}
            page = self._call("list_objects_v2", **args)
            yield page
            if not page.get("IsTruncated"):
                return
            token = page["NextContinuationToken"]

    def used_bytes(self) -> None:
        """Not known without listing the whole bucket: IMAGE_DISK_BUDGET_GB is for the filesystem store
        (config.py refuses it with s3; a bucket has its own quota)."""
        return None

    def health(self, min_free_mb: int) -> tuple[str, dict]:
        """The /health check: the bucket answers (HEAD), and how fast."""
        started = time.perf_counter()
        try:
            self._call("head_bucket", Bucket=self.bucket)
        except (ImageStoreUnavailable, FileNotFoundError) as exc:
            log.warning("event=health_image_store_failed error=%r", str(exc))
            return "image_store", {"ok": False}
        return "image_store", {"ok": True, "seconds": round(time.perf_counter() - started, 4)}

    def _call(self, operation: str, **arguments):
        """One S3 call; a missing key is FileNotFoundError, any other failure ImageStoreUnavailable
        (its message names the operation and S3's error code, never a key or a credential)."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return getattr(self.client, operation)(**arguments)
        except ClientError as exc:
            error = exc.response.get("Error", {})
            code = str(error.get("Code", ""))
            if code in ("NoSuchKey", "404", "NotFound") and "Key" in arguments:
                raise FileNotFoundError(arguments["Key"]) from None
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            raise ImageStoreUnavailable(f"S3 {operation} refused: {code or status}") from None
        except BotoCoreError as exc:
            raise ImageStoreUnavailable(f"S3 {operation} failed: {exc.__class__.__name__}: {exc}") from None


def _make_client(endpoint_url: str, timeout: float):
    import boto3
    from botocore.config import Config as BotoConfig

    # botocore's debug lines carry whole requests, the signed Authorization header among them: whatever
    # LOG_LEVEL says, only its warnings reach the log.
    for name in ("boto3", "botocore", "s3transfer"):
        logging.getLogger(name).setLevel(max(logging.WARNING, logging.getLogger(name).level))

    config = BotoConfig(
        connect_timeout=timeout, read_timeout=timeout,
        retries={"total_max_attempts": S3_ATTEMPTS, "mode": "standard"},  # max_attempts would count retries
        max_pool_connections=S3_IO_THREADS + 4,
        # MinIO and most S3-compatible stores want bucket/key paths, not bucket.host names.
        s3={"addressing_style": "path"} if endpoint_url else {},
        # Only the checksums S3 requires (DeleteObjects): not every S3-compatible store knows the newer ones.
        request_checksum_calculation="when_required", response_checksum_validation="when_required",
    )
    return boto3.session.Session().client("s3", endpoint_url=endpoint_url or None, config=config)


IMAGE_STORES = {"filesystem": FilesystemImageStore, "s3": S3ImageStore}


def ensure_thumbnail(store: ImageStore, image_key: str, thumb_key: str) -> None:
    """Make a read's thumbnail from its image if it is not kept yet: on its first view, so that no camera
    waits for it (issue 24, "a lighter answer path"). Nothing happens when the image itself is gone (the
    caller answers 404); ImageStoreUnavailable when the store cannot say or take it."""
    if store.exists(thumb_key):
        return
    try:
        data = store.read(image_key)
    except FileNotFoundError:
        return
    store.save_thumbnail(thumb_key, make_thumbnail(data))


def image_store_from_config(config, map_blocking: Callable[[Callable, list], list] = run_each,
                            map_io: Callable[[Callable, list], list] | None = None):
    """The store IMAGE_STORE names, with the settings of README "Images on an object store"."""
    return IMAGE_STORES[config["IMAGE_STORE"]].from_config(config, map_blocking, map_io)


IMAGE_SETTINGS = ("IMAGE_STORE", "IMAGE_STORAGE_PATH", "IMAGE_SYNC", "S3_ENDPOINT_URL", "S3_BUCKET",
                  "S3_TIMEOUT")


def image_settings(config) -> dict:
    """The settings a store is made from (a store worker gets these; no credential is among them)."""
    return {name: config[name] for name in IMAGE_SETTINGS}


def image_store_for(app):
    """The app's store for reading and deleting, made once per process and settings (an S3 client
    costs tens of milliseconds to make; it is shared by every request)."""
    settings = image_settings(app.config)
    key = tuple(settings.values())
    cached = app.extensions.get("lprserver.image_store")
    if cached is None or cached[0] != key:
        cached = (key, image_store_from_config(settings))
        app.extensions["lprserver.image_store"] = cached
    return cached[1]

