"""Retention: delete old records and their image files together, and sweep what was left half-done.

Rows go first, in a committed transaction, then their files. A crash between
the two leaves files without rows (the sweeper removes them later), never a
row pointing at a missing file.
"""

import logging
import os
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import delete, or_, select, update
from sqlalchemy.orm import Session

from .images import FilesystemImageStore
from .models import BlacklistDetection, Record, utcnow

log = logging.getLogger("lprserver.retention")

# Files younger than this may belong to a read whose row is not committed yet.
ORPHAN_GRACE = timedelta(hours=1)


@dataclass
class CleanupReport:
    records: int = 0
    files: int = 0
    bytes_freed: int = 0
    orphan_files: int = 0
    missing_files: int = 0
    batches: int = 0

    def summary(self) -> str:
        return (f"records_deleted={self.records} files_deleted={self.files} "
                f"bytes_freed={self.bytes_freed} orphan_files_deleted={self.orphan_files} "
                f"rows_with_missing_files={self.missing_files} batches={self.batches}")


def delete_batch(session: Session, store: FilesystemImageStore, record_ids: list[int],
                 report: CleanupReport) -> None:
    """Delete these records (and their blacklist hits) in one transaction, then their files."""
    paths = session.execute(
        select(Record.image_path, Record.thumbnail_path).where(Record.id.in_(record_ids))
    ).all()
    session.execute(delete(BlacklistDetection).where(BlacklistDetection.record_id.in_(record_ids)))
    session.execute(delete(Record).where(Record.id.in_(record_ids)))
    session.commit()
    report.records += len(record_ids)
    report.batches += 1
    for image, thumbnail in paths:
        for rel in (image, thumbnail):
            report.bytes_freed += _unlink(store, rel, report)


def _unlink(store: FilesystemImageStore, rel: str | None, report: CleanupReport) -> int:
    if not rel:
        return 0
    try:
        path = store.path(rel)
        size = path.stat().st_size
        path.unlink()
    except FileNotFoundError:
        return 0
    except (OSError, ValueError) as exc:
        log.warning("event=retention_unlink_failed path=%s error=%r", rel, str(exc))
        return 0
    report.files += 1
    return size


def delete_older_than(session: Session, store: FilesystemImageStore, cutoff: datetime,
                      batch_size: int, report: CleanupReport) -> None:
    """Delete every record received before `cutoff`, oldest first, `batch_size` at a time."""
    while True:
        ids = list(session.scalars(
            select(Record.id).where(Record.received_at < cutoff).order_by(Record.id).limit(batch_size)
        ))
        if not ids:
            return
        delete_batch(session, store, ids, report)
        log.info("event=retention_batch reason=age cutoff=%s records=%d", cutoff.isoformat(), len(ids))


def disk_usage(root: Path) -> int:
    """Return the bytes of every file under the image store."""
    total = 0
    for folder, _dirs, files in os.walk(root):
        for name in files:
            try:
                total += os.lstat(os.path.join(folder, name)).st_size
            except FileNotFoundError:
                pass
    return total


def enforce_disk_budget(session: Session, store: FilesystemImageStore, budget_bytes: int,
                        batch_size: int, report: CleanupReport) -> None:
    """Delete the oldest records until the image store is within `budget_bytes`."""
    used = disk_usage(store.root)
    while used > budget_bytes:
        ids = list(session.scalars(
            select(Record.id).where(Record.image_path.is_not(None)).order_by(Record.id).limit(batch_size)
        ))
        if not ids:
            return
        before = report.bytes_freed
        delete_batch(session, store, ids, report)
        used -= report.bytes_freed - before
        log.info("event=retention_batch reason=disk_budget records=%d used_bytes=%d budget_bytes=%d",
                 len(ids), used, budget_bytes)


def sweep_orphan_files(session: Session, store: FilesystemImageStore, report: CleanupReport,
                       now: datetime | None = None) -> None:
    """Delete image files no record points at (older than the grace period)."""
    limit = ((now or utcnow()) - ORPHAN_GRACE).timestamp()
    for folder, _dirs, files in os.walk(store.root):
        if not files:
            continue
        rel_folder = Path(folder).relative_to(store.root)
        known = _referenced_in(session, str(rel_folder))
        for name in files:
            full = Path(folder) / name
            rel = str(rel_folder / name)
            try:
                stat = full.stat()
            except FileNotFoundError:
                continue
            if rel in known or stat.st_mtime > limit:
                continue
            full.unlink(missing_ok=True)
            report.orphan_files += 1
            report.bytes_freed += stat.st_size
            log.info("event=retention_orphan_file path=%s bytes=%d", rel, stat.st_size)


def _referenced_in(session: Session, rel_folder: str) -> set[str]:
    prefix = "" if rel_folder == "." else rel_folder.rstrip("/") + "/"
    rows = session.execute(
        select(Record.image_path, Record.thumbnail_path).where(
            or_(Record.image_path.startswith(prefix, autoescape=True),
                Record.thumbnail_path.startswith(prefix, autoescape=True))
        )
    )
    return {path for row in rows for path in row if path}


def sweep_missing_files(session: Session, store: FilesystemImageStore, batch_size: int,
                        report: CleanupReport) -> None:
    """Clear image paths of records whose file is gone, so no row points at a missing file."""
    last_id = 0
    while True:
        rows = session.execute(
            select(Record.id, Record.image_path, Record.thumbnail_path)
            .where(Record.id > last_id,
                   or_(Record.image_path.is_not(None), Record.thumbnail_path.is_not(None)))
            .order_by(Record.id).limit(batch_size)
        ).all()
        if not rows:
            return
        last_id = rows[-1].id
        leftovers = []
        for record_id, image, thumbnail in rows:
            if _exists(store, image) and _exists(store, thumbnail):
                continue
            # The read itself is kept; only the dangling reference (and a lone thumbnail) goes.
            session.execute(update(Record).where(Record.id == record_id)
                            .values(image_path=None, thumbnail_path=None, image_bytes=None))
            leftovers += [image, thumbnail]
            report.missing_files += 1
            log.warning("event=retention_missing_file record_id=%d path=%s", record_id, image)
        session.commit()
        for rel in leftovers:
            report.bytes_freed += _unlink(store, rel, report)


def _exists(store: FilesystemImageStore, rel: str | None) -> bool:
    if not rel:
        return True
    try:
        return store.path(rel).is_file()
    except ValueError:
        return False


def cleanup(session: Session, store: FilesystemImageStore, retention_days: int, budget_bytes: int,
            batch_size: int, sweep: bool = True, now: datetime | None = None) -> CleanupReport:
    """Apply the retention period, then the disk budget, then sweep orphans; return what was removed."""
    report = CleanupReport()
    now = now or utcnow()
    if retention_days > 0:
        delete_older_than(session, store, now - timedelta(days=retention_days), batch_size, report)
    if budget_bytes > 0:
        enforce_disk_budget(session, store, budget_bytes, batch_size, report)
    if sweep:
        sweep_missing_files(session, store, batch_size, report)
        sweep_orphan_files(session, store, report, now)
    log.info("event=retention_done %s", report.summary())
    return report
