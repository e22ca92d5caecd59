"""Retention: delete old records and their image files together, and sweep what was left half-done.

SPEC §15 "Retention by kind": a read goes after RETENTION_DAYS, a read that hit the blacklist after
HIT_RETENTION_DAYS (row and image together), and the image of any other read after
IMAGE_RETENTION_DAYS when that is shorter (the row stays, without its image). The audit log is kept
AUDIT_RETENTION_DAYS. 0 keeps forever.

Rows go first, in a committed transaction, then their files. A crash between
the two leaves files without rows (the sweeper removes them later), never a
row pointing at a missing file. An image is cleared the same way: the row's
paths are set to NULL and committed, then the files are unlinked.

On PostgreSQL lpr_records has one partition per UTC month (SPEC §14, partitions.py). Before the row
batches, each month partition wholly before the reads' cutoff that holds no hit still kept goes whole
(drop_old_partitions): it is detached first (its rows leave lpr_records at once, in one short
transaction), then the rows pointing at its reads (hits, alerts, visits' references, dedupe keys) go and
its files are unlinked in batches, then the table is dropped. A crash meanwhile leaves a detached table
that no query of the app reads, and the next cleanup finishes it (its files, if the cleanup never runs
again, are orphans for the sweep).

Every pass walks its rows in (time, id) order from where its last batch ended,
`batch_size` rows per short transaction, so 5 M rows never sit in memory and
ingest goes on while it runs.
"""

import logging
import re
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, delete, exists, func, or_, select, text, update
from sqlalchemy.orm import Session

from . import partitions
from .image_store import ImageStore
from .images import ImageStoreUnavailable
from .models import Alert, AuditEntry, BlacklistDetection, Record, RecordKey, Visit, utcnow

log = logging.getLogger("lprserver.retention")

# Files younger than this may belong to a read whose row is not committed yet.
ORPHAN_GRACE = timedelta(hours=1)
# The image store's folders: YYYY/MM/DD/<camera_id> of the time the read was received (images.py).
_DAY_FOLDER = re.compile(r"^(\d{4})/(\d{2})/(\d{2})/([^/]+)$")


@dataclass(frozen=True)
class RetentionSettings:
    """How long each kind is kept, in days (0: forever), and how the cleanup works through them."""

    read_days: int = 0
    image_days: int | None = None  # None: as read_days
    hit_days: int | None = None  # None: as read_days
    audit_days: int = 0
    budget_bytes: int = 0
    batch_size: int = 500

    @classmethod
    def from_config(cls, config: Any) -> "RetentionSettings":
        return cls(read_days=config["RETENTION_DAYS"], image_days=config["IMAGE_RETENTION_DAYS"],
                   hit_days=config["HIT_RETENTION_DAYS"], audit_days=config["AUDIT_RETENTION_DAYS"],
                   budget_bytes=int(config["IMAGE_DISK_BUDGET_GB"] * 1024**3),
                   batch_size=config["RETENTION_BATCH_SIZE"])

    @property
    def images_days(self) -> int:
        return self.read_days if self.image_days is None else self.image_days

    @property
    def hits_days(self) -> int:
        return self.read_days if self.hit_days is None else self.hit_days

    def cutoffs(self, now: datetime) -> "Cutoffs":
        """The times before which each kind goes (None: that kind is kept)."""
        def before(days: int) -> datetime | None:
            return now - timedelta(days=days) if days > 0 else None

        image = before(self.images_days)
        # Images go by themselves only when that is sooner than their read.
        if image is not None and self.read_days > 0 and self.images_days >= self.read_days:
            image = None
        return Cutoffs(reads=before(self.read_days), hits=before(self.hits_days), images=image,
                       audit=before(self.audit_days))


@dataclass(frozen=True)
class Cutoffs:
    reads: datetime | None
    hits: datetime | None
    images: datetime | None
    audit: datetime | None


@dataclass
class CleanupReport:
    records: int = 0  # every read deleted, hits included
    hit_records: int = 0  # of which reads that hit the blacklist
    images_cleared: int = 0  # reads kept without their image
    audit_deleted: int = 0
    visits_deleted: int = 0
    files: int = 0
    bytes_freed: int = 0
    orphan_files: int = 0
    missing_files: int = 0
    partitions_dropped: int = 0  # whole month partitions (PostgreSQL, SPEC §14); their reads are in records
    batches: int = 0
    seconds: float = field(default=0.0)

    def summary(self) -> str:
        return (f"records_deleted={self.records} files_deleted={self.files} "
                f"bytes_freed={self.bytes_freed} orphan_files_deleted={self.orphan_files} "
                f"rows_with_missing_files={self.missing_files} batches={self.batches} "
                f"hit_records_deleted={self.hit_records} images_cleared={self.images_cleared} "
                f"visits_deleted={self.visits_deleted} audit_deleted={self.audit_deleted} "
                f"partitions_dropped={self.partitions_dropped}")

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _is_hit():
    """A read that hit the blacklist: flagged so, or with a detection (a correction may have
    cleared the flag; the detection it raised stays)."""
    return or_(Record.blacklisted.is_(True),
               exists().where(BlacklistDetection.record_id == Record.id))


def _not_hit():
    return and_(Record.blacklisted.is_(False),
                ~exists().where(BlacklistDetection.record_id == Record.id))


def _walk(session: Session, columns: list, at, ident, where: list, batch_size: int) -> Iterator[list]:
    """Yield the rows matching `where` in (at, id) order, `batch_size` at a time, each batch starting
    after the last one's final row (deleted or changed rows are never read twice)."""
    last = None
    while True:
        query = select(*columns, at.label("_at"), ident.label("_id")).where(*where)
        if last is not None:
            query = query.where(at >= last[0], or_(at > last[0], and_(at == last[0], ident > last[1])))
        rows = session.execute(query.order_by(at, ident).limit(batch_size)).all()
        if not rows:
            return
        last = (rows[-1]._at, rows[-1]._id)
        yield rows


def delete_batch(session: Session, store: ImageStore, record_ids: list[int],
                 report: CleanupReport) -> None:
    """Delete these records (and their blacklist hits) in one transaction, then their files.

    Their alerts go with them, their visits keep their times (the reference is set to NULL); the
    analytics counts are totals and stay."""
    paths = session.execute(
        select(Record.image_path, Record.thumbnail_path).where(Record.id.in_(record_ids))
    ).all()
    delete_children(session, record_ids)
    session.execute(delete(Record).where(Record.id.in_(record_ids)))
    session.commit()
    report.records += len(record_ids)
    report.batches += 1
    _unlink(store, [rel for row in paths for rel in row], report)


def delete_children(session: Session, record_ids: list[int]) -> None:
    """Delete (or clear) what points at these reads: their blacklist hits and alerts, their dedupe keys,
    their visits' references. No foreign key does it on PostgreSQL, where lpr_records is partitioned
    (SPEC §14: a key would have to name received_at too); every deleter of reads calls this, in the
    transaction that deletes them. The caller commits."""
    session.execute(delete(Alert).where(Alert.record_id.in_(record_ids))
                    .execution_options(synchronize_session=False))
    session.execute(delete(BlacklistDetection).where(BlacklistDetection.record_id.in_(record_ids))
                    .execution_options(synchronize_session=False))
    session.execute(delete(RecordKey).where(RecordKey.record_id.in_(record_ids))
                    .execution_options(synchronize_session=False))
    for column in (Visit.entry_record_id, Visit.exit_record_id):
        session.execute(update(Visit).where(column.in_(record_ids)).values({column: None})
                        .execution_options(synchronize_session=False))


def _droppable(session: Session, month: partitions.Month, cut: Cutoffs) -> bool:
    """Whether every read of the month is past retention: the month ends by the reads' cutoff and none of
    its reads is a blacklist hit still kept (HIT_RETENTION_DAYS, or forever)."""
    if cut.reads is None or month.end > cut.reads:
        return False
    kept = [Record.received_at >= month.start, Record.received_at < month.end, _is_hit()]
    if cut.hits is not None:
        kept.append(Record.received_at >= cut.hits)
    return session.scalar(select(exists().where(*kept))) is False


def drop_old_partitions(session: Session, store: ImageStore, cut: Cutoffs, batch_size: int,
                        report: CleanupReport) -> None:
    """Drop each month partition whose reads are all past retention (SPEC §14), with their files and
    the rows pointing at them; finish first the ones a cleanup detached and did not drop."""
    if not partitions.is_partitioned(session):
        return
    for month in partitions.months(session):
        if _droppable(session, month, cut):
            partitions.detach(session, month)
            session.commit()
            log.info("event=retention_partition_detached partition=%s", month.name)
    for name in partitions.detached(session):
        _finish_detached(session, store, name, batch_size, report)


def _finish_detached(session: Session, store: ImageStore, name: str, batch_size: int,
                     report: CleanupReport) -> None:
    """Delete what points at a detached month table's reads and their files, batch by batch (each batch
    committed before its files go), then drop the table."""
    last, reads = 0, 0
    while True:
        rows = session.execute(text(f"SELECT id, image_path, thumbnail_path, blacklisted FROM {name} "
                                    "WHERE id > :last "
                                    "ORDER BY id LIMIT :n"), {"last": last, "n": batch_size}).all()
        if not rows:
            break
        last = rows[-1].id
        delete_children(session, [row.id for row in rows])
        session.commit()
        reads += len(rows)
        report.hit_records += sum(1 for row in rows if row.blacklisted)
        report.batches += 1
        _unlink(store, [rel for row in rows for rel in (row.image_path, row.thumbnail_path)], report)
    partitions.drop(session, name)
    session.commit()
    report.records += reads
    report.partitions_dropped += 1
    log.info("event=retention_partition_dropped partition=%s records=%d", name, reads)


def _unlink(store: ImageStore, rels: list[str | None], report: CleanupReport) -> None:
    """Remove the files (or objects) of rows already gone; one that cannot be removed is logged and left
    to the orphan sweep."""
    files, size = store.delete_counted([rel for rel in rels if rel])
    report.files += files
    report.bytes_freed += size


def delete_older_than(session: Session, store: ImageStore, cutoff: datetime,
                      batch_size: int, report: CleanupReport, hits: bool | None = None) -> None:
    """Delete the records received before `cutoff`, oldest first, `batch_size` at a time: every one
    (hits None), only the blacklist hits (True) or only the other reads (False)."""
    where = [Record.received_at < cutoff]
    if hits is not None:
        where.append(_is_hit() if hits else _not_hit())
    reason = {None: "age", True: "hit_age", False: "age"}[hits]
    for rows in _walk(session, [Record.id], Record.received_at, Record.id, where, batch_size):
        ids = [row.id for row in rows]
        delete_batch(session, store, ids, report)
        if hits:
            report.hit_records += len(ids)
        log.info("event=retention_batch reason=%s cutoff=%s records=%d", reason, cutoff.isoformat(), len(ids))


def clear_images_older_than(session: Session, store: ImageStore, cutoff: datetime,
                            batch_size: int, report: CleanupReport) -> None:
    """Take the images of reads (not hits) received before `cutoff` away: the rows stay. Each batch
    sets their paths to NULL and commits before the files are unlinked."""
    where = [Record.received_at < cutoff,
             or_(Record.image_path.is_not(None), Record.thumbnail_path.is_not(None)), _not_hit()]
    columns = [Record.id, Record.image_path, Record.thumbnail_path]
    for rows in _walk(session, columns, Record.received_at, Record.id, where, batch_size):
        session.execute(update(Record).where(Record.id.in_([row.id for row in rows]))
                        .values(image_path=None, thumbnail_path=None, image_bytes=None))
        session.commit()
        report.images_cleared += len(rows)
        report.batches += 1
        _unlink(store, [rel for row in rows for rel in (row.image_path, row.thumbnail_path)], report)
        log.info("event=retention_batch reason=image_age cutoff=%s images=%d", cutoff.isoformat(), len(rows))


def delete_visits_older_than(session: Session, cutoff: datetime, batch_size: int,
                             report: CleanupReport) -> None:
    """Delete the visits whose reads are all gone and that ended (or began) before `cutoff`."""
    where = [Visit.entry_record_id.is_(None), Visit.exit_record_id.is_(None),
             func.coalesce(Visit.exited_at, Visit.entered_at) < cutoff]
    while True:
        ids = list(session.scalars(select(Visit.id).where(*where).order_by(Visit.id).limit(batch_size)))
        if not ids:
            return
        session.execute(delete(Visit).where(Visit.id.in_(ids)))
        session.commit()
        report.visits_deleted += len(ids)
        report.batches += 1


def delete_audit_older_than(session: Session, cutoff: datetime, batch_size: int,
                            report: CleanupReport) -> None:
    """Delete audit entries older than `cutoff`: the audit log's own retention (SPEC §15)."""
    for rows in _walk(session, [], AuditEntry.at, AuditEntry.id, [AuditEntry.at < cutoff], batch_size):
        session.execute(delete(AuditEntry).where(AuditEntry.id.in_([row._id for row in rows])))
        session.commit()
        report.audit_deleted += len(rows)
        report.batches += 1
        log.info("event=retention_batch reason=audit_age cutoff=%s entries=%d", cutoff.isoformat(), len(rows))


@dataclass(frozen=True)
class Preview:
    """What the next cleanup would delete if it ran at `now` (the disk budget and sweeps aside)."""

    cutoffs: Cutoffs
    reads: int  # reads (not hits) to delete
    hits: int  # blacklist hits to delete
    images: int  # reads that would lose their image
    audit: int

    def as_dict(self) -> dict[str, Any]:
        def iso(moment: datetime | None) -> str | None:
            return moment.isoformat().replace("+00:00", "Z") if moment else None

        return {"reads": self.reads, "hits": self.hits, "images": self.images, "audit": self.audit,
                "cutoffs": {name: iso(getattr(self.cutoffs, name))
                            for name in ("reads", "hits", "images", "audit")}}


def preview(session: Session, settings: RetentionSettings, now: datetime | None = None) -> Preview:
    """Count what cleanup(settings, now) would delete: COUNTs over the indexed received_at and at."""
    cut = settings.cutoffs(now or utcnow())

    def count(*where) -> int:
        return session.scalar(select(func.count()).select_from(Record).where(*where)) or 0

    reads = hits = images = audit = 0
    if cut.reads is not None:
        reads = count(Record.received_at < cut.reads, _not_hit())
    if cut.hits is not None:
        hits = count(Record.received_at < cut.hits, _is_hit())
    if cut.images is not None:
        where = [Record.received_at < cut.images, _not_hit(),
                 or_(Record.image_path.is_not(None), Record.thumbnail_path.is_not(None))]
        if cut.reads is not None:
            where.append(Record.received_at >= cut.reads)  # older ones go whole
        images = count(*where)
    if cut.audit is not None:
        audit = session.scalar(select(func.count()).select_from(AuditEntry)
                               .where(AuditEntry.at < cut.audit)) or 0
    return Preview(cut, reads, hits, images, audit)


def last_run(session: Session) -> AuditEntry | None:
    """The audit entry the last `flask lpr cleanup` wrote (action retention.cleanup), if any."""
    return session.scalars(select(AuditEntry).where(AuditEntry.action == "retention.cleanup")
                           .order_by(AuditEntry.at.desc(), AuditEntry.id.desc()).limit(1)).first()


def enforce_disk_budget(session: Session, store: ImageStore, budget_bytes: int,
                        batch_size: int, report: CleanupReport) -> None:
    """Delete the oldest records until the image store is within `budget_bytes` (the filesystem store:
    an object store does not say what it holds without a listing of it all, and has quotas of its own)."""
    used = store.used_bytes()
    if used is None:
        log.warning("event=retention_budget_skipped reason=%r", f"the {store.kind} image store has no budget")
        return
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


def sweep_orphan_files(session: Session, store: ImageStore, report: CleanupReport,
                       now: datetime | None = None) -> None:
    """Delete image files (or objects) no record points at, older than the grace period."""
    limit = ((now or utcnow()) - ORPHAN_GRACE).timestamp()
    for rel_folder, files in store.files():
        known = _referenced_in(session, rel_folder)
        candidates = {file.key: file.size for file in files
                      if file.key not in known and file.modified <= limit}
        for rel in _still_referenced(session, list(candidates)):
            del candidates[rel]
        if not candidates:
            continue
        store.delete(*candidates)
        for rel, size in candidates.items():
            report.orphan_files += 1
            report.bytes_freed += size
            log.info("event=retention_orphan_file path=%s bytes=%d", rel, size)


def _referenced_in(session: Session, rel_folder: str) -> set[str]:
    """The paths under `rel_folder` that records point at.

    A day folder (YYYY/MM/DD/<camera>) is looked up through the (camera_id, received_at) index,
    within two days of its date; files it does not name are checked one by one afterwards
    (_still_referenced), so a read whose time was changed keeps its files all the same."""
    prefix = "" if rel_folder == "." else rel_folder.rstrip("/") + "/"
    where = [or_(Record.image_path.startswith(prefix, autoescape=True),
                 Record.thumbnail_path.startswith(prefix, autoescape=True))]
    day = _DAY_FOLDER.match(rel_folder)
    if day:
        try:
            start = datetime(int(day[1]), int(day[2]), int(day[3]), tzinfo=utcnow().tzinfo)
        except ValueError:
            start = None
        if start is not None:
            where += [Record.camera_id == day[4], Record.received_at >= start - timedelta(days=2),
                      Record.received_at < start + timedelta(days=3)]
    rows = session.execute(select(Record.image_path, Record.thumbnail_path).where(*where))
    return {path for row in rows for path in row if path}


def _still_referenced(session: Session, rels: list[str], chunk: int = 500) -> set[str]:
    """Which of these paths a record points at after all (exact matches)."""
    found: set[str] = set()
    for start in range(0, len(rels), chunk):
        part = rels[start:start + chunk]
        rows = session.execute(select(Record.image_path, Record.thumbnail_path).where(
            or_(Record.image_path.in_(part), Record.thumbnail_path.in_(part))))
        found.update(path for row in rows for path in row if path in part)
    return found


def sweep_missing_files(session: Session, store: ImageStore, batch_size: int,
                        report: CleanupReport) -> None:
    """Clear image paths of records whose image is gone, so no row points at a missing image."""
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
        # Only the image counts: a thumbnail is made on its first view, and made again if it was lost.
        gone = store.missing([row.image_path for row in rows if row.image_path])
        leftovers = []
        for record_id, image, thumbnail in rows:
            if image and image not in gone:
                continue
            # The read itself is kept; only the dangling reference (and a lone thumbnail) goes.
            session.execute(update(Record).where(Record.id == record_id)
                            .values(image_path=None, thumbnail_path=None, image_bytes=None))
            leftovers += [image, thumbnail]
            report.missing_files += 1
            log.warning("event=retention_missing_file record_id=%d path=%s", record_id, image)
        session.commit()
        _unlink(store, leftovers, report)


def cleanup(session: Session, store: ImageStore, retention_days: int, budget_bytes: int,
            batch_size: int, sweep: bool = True, now: datetime | None = None, *,
            image_days: int | None = None, hit_days: int | None = None, audit_days: int = 0) -> CleanupReport:
    """Apply the retention periods (reads, hits, images, visits, audit), then the disk budget, then
    sweep orphans; return what was removed. `image_days` and `hit_days` None: as `retention_days`."""
    settings = RetentionSettings(read_days=retention_days, image_days=image_days, hit_days=hit_days,
                                 audit_days=audit_days, budget_bytes=budget_bytes, batch_size=batch_size)
    return run(session, store, settings, sweep=sweep, now=now)


def run(session: Session, store: ImageStore, settings: RetentionSettings, sweep: bool = True,
        now: datetime | None = None) -> CleanupReport:
    """cleanup() with its settings in one object (RetentionSettings.from_config for the app's)."""
    report = CleanupReport()
    now = now or utcnow()
    started = time.monotonic()
    cut = settings.cutoffs(now)
    size = settings.batch_size
    drop_old_partitions(session, store, cut, size, report)
    if cut.reads is not None:
        delete_older_than(session, store, cut.reads, size, report, hits=False)
    if cut.hits is not None:
        delete_older_than(session, store, cut.hits, size, report, hits=True)
    if cut.images is not None:
        clear_images_older_than(session, store, cut.images, size, report)
    if cut.reads is not None:
        delete_visits_older_than(session, cut.reads, size, report)
    if cut.audit is not None:
        delete_audit_older_than(session, cut.audit, size, report)
    if settings.budget_bytes > 0:
        enforce_disk_budget(session, store, settings.budget_bytes, size, report)
    if sweep:
        try:
            sweep_missing_files(session, store, size, report)
            sweep_orphan_files(session, store, report, now)
        except ImageStoreUnavailable as exc:  # an object store that is down: no row is cleared for it
            session.rollback()
            log.warning("event=retention_sweep_skipped error=%r", str(exc))
    partitions.ensure_partitions(session)  # SPEC §14: the months ahead, as the daemons' start does
    session.commit()
    report.seconds = round(time.monotonic() - started, 3)
    log.info("event=retention_done %s", report.summary())
    return report
