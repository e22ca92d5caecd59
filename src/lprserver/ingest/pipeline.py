"""The one ingest pipeline: validate → save image → insert row → match blacklist → answer.

Everything a read causes comes out of here, in its transaction: the row, its blacklist hits, the
alerts (SPEC §11: a hit, a plate not on a gate's list), the visit it opens or closes (SPEC §10), whether
it waits for review, its live events and its webhook events.

Every door (Socket.IO, raw WebSocket, HTTP) calls these functions and only
translates payloads and answers. The pipeline owns its transaction because
the delivery guarantee (README "Sending reads") is about when the commit happens.
"""

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import delete, exists, insert, select, tuple_
from sqlalchemy import exc as sa_exc
from sqlalchemy.orm import Session

from ..alerts import Outbox, Raised, raise_alert, repeat_of
from ..analytics_counts import count_reads
from ..camera_offline import resolve_silence
from ..cameras import authorize_camera, touch_camera
from ..hotlist import cache_for, current_hotlist, match_reads
from ..image_store import ImageStore
from ..images import ImageRejected, SentImage, StoredImage
from ..known import current_known
from ..models import BlacklistDetection, Camera, Record, RecordKey, utcnow
from ..plates import ParsedPlate, is_valid_normalized, parse_plate
from ..times import to_utc
from ..tokens import token_matches
from ..visits import GateRead, apply_visits, visit_kind
from ..webhooks import enqueue as enqueue_webhooks
from ..wire import alert_event, blacklist_alert, camera_status, record_json
from .database_errors import database_errors, refused_value
from .errors import IngestError
from .validation import ReadIn, confidence_percent, parse

log = logging.getLogger("lprserver.ingest")


@dataclass(frozen=True)
class IngestSettings:
    auth: str
    image_max_bytes: int
    image_max_pixels: int
    timezone: str
    review_confidence: float = 80.0  # SPEC §10 "Review": reads under this wait on /review
    alert_repeat_seconds: int = 60  # SPEC §11: a plate again at one camera within this is one alert

    @classmethod
    def from_config(cls, config) -> "IngestSettings":
        return cls(
            auth=config["INGEST_AUTH"],
            image_max_bytes=config["IMAGE_MAX_BYTES"],
            image_max_pixels=config["IMAGE_MAX_PIXELS"],
            timezone=config["TIMEZONE"],
            review_confidence=config["REVIEW_CONFIDENCE"],
            alert_repeat_seconds=config["ALERT_REPEAT_SECONDS"],
        )


@dataclass
class ReadResult:
    """A stored read: what to answer, and everything it caused that others must hear of.

    `events` are the live events of README "Live updates", in order (`new_record`, a
    `blacklist_alert` per hit, an `alert` per other trigger, `camera_status` when the camera's state
    changed); each door hands
    them to its publisher after the commit. Its webhook events were queued in the transaction."""

    record_id: int
    duplicate: bool
    blacklisted: bool
    camera_id: str
    events: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    @property
    def live(self) -> dict[str, Any] | None:
        """The record's `new_record` event, if the read was stored now."""
        return next((data for event, data in self.events if event == "new_record"), None)

    @property
    def alerts(self) -> list[dict[str, Any]]:
        return [data for event, data in self.events if event == "blacklist_alert"]

    @property
    def other_alerts(self) -> list[dict[str, Any]]:
        return [data for event, data in self.events if event == "alert"]

    def answer(self) -> dict[str, Any]:
        return {
            "status": "success",
            "record_id": self.record_id,
            "duplicate": self.duplicate,
            "blacklisted": self.blacklisted,
        }


def ingest_read(session: Session, store: ImageStore, settings: IngestSettings,
                payload: Any, token: str | None = None) -> ReadResult:
    """Validate, store and match one plate read; return what to answer and to broadcast."""
    return store_read(session, store, settings, prepare_read(payload, token))


def store_read(session: Session, store: ImageStore, settings: IngestSettings,
               read: "PreparedRead") -> ReadResult:
    """Store and match one read whose fields were checked (`prepare_read`)."""
    if settings.auth == "token" and not read.trusted:
        # Refuse a wrong token before spending time on the image; checked again when stored.
        with database_errors(session):
            token_hash = session.scalar(select(Camera.token_hash).where(Camera.id == read.data.camera_id))
        refuse_wrong_token(read, token_hash)
    outcome = ingest_reads(session, store, settings, [read])[0]
    if isinstance(outcome, IngestError):
        raise outcome
    return outcome


@dataclass
class PreparedRead:
    """A read whose fields were checked; its image is checked where it is written."""

    data: ReadIn
    parsed: ParsedPlate  # the plate without its province, the province, the format
    confidence: float | None
    metadata: dict[str, Any] | None
    token: str | None
    # Sent by a signed-in admin or operator (POST /api/records with their read-write API token, README
    # "Sending reads"): no camera token is needed, but in token mode the camera must exist.
    trusted: bool = False

    @property
    def plate(self) -> str:
        return self.parsed.normalized

    @property
    def key(self) -> tuple[str, str] | None:
        return (self.data.camera_id, self.data.event_id) if self.data.event_id is not None else None


def prepare_read(payload: Any, token: str | None = None, trusted: bool = False) -> PreparedRead:
    """Check the fields of a read (all but the image) before anything is written."""
    data = parse(ReadIn, payload)
    parsed = parse_plate(data.plate_number, data.province)
    if not is_valid_normalized(parsed.normalized):
        raise IngestError(
            "invalid_plate", "plate_number is empty or over 32 characters once normalised", "plate_number"
        )
    return PreparedRead(data, parsed, confidence_percent(data.confidence), data.metadata(),
                        token or data.token, trusted)


def refuse_wrong_token(read: PreparedRead, token_hash: str | None) -> None:
    """Raise `unauthorized` unless the read's token matches the camera's stored hash."""
    if not token_matches(read.token, token_hash):
        raise IngestError("unauthorized", "camera token missing or wrong", "token")


Outcome = ReadResult | IngestError


def ingest_reads(session: Session, store: ImageStore, settings: IngestSettings,
                 reads: list[PreparedRead]) -> list[Outcome]:
    """Store checked reads in one transaction (group commit); return each read's outcome, in order.

    Per read: the camera is authorised, a repeat of an earlier (camera_id, event_id)
    is answered with the first record, the image is written durably, then the row,
    its blacklist hits, alerts, visit and webhook events are inserted, all committed at once.
    A read's outcome is a ReadResult or the IngestError to answer. One read never costs
    the others theirs: when the batch fails on anything but an unavailable database, each
    read is stored again on its own, and the one that fails alone on a value the database
    refuses is answered `invalid_payload` (resending it would fail again). Images are on
    disk (or in the object store) before the commit and removed again if it fails, so nothing is ever
    half stored.
    """
    try:
        return _store_batch(session, store, settings, reads)
    except sa_exc.IntegrityError:
        # Another connection stored one of these (camera_id, event_id) first, or a hit names an entry
        # deleted since the blacklist index was checked: store them one by one, the index checked again.
        session.rollback()
        cache_for(session).invalidate()
        if len(reads) == 1:
            earlier = _earlier(session, reads[0])
            if earlier is not None:
                return [earlier]
            _drop_dangling_key(session, reads[0])
            # No earlier read: another batch opened this plate's visit first (one open visit per plate,
            # SPEC §10), or committed a blacklist change. Stored once more, that commit now visible.
            return [_store_batch(session, store, settings, reads)[0]]
        return _one_by_one(session, store, settings, reads)
    except Exception as exc:
        session.rollback()
        if len(reads) > 1:
            log.warning("event=batch_split reads=%d error=%s", len(reads), exc.__class__.__name__)
            return _one_by_one(session, store, settings, reads)
        if not refused_value(exc):
            raise
        log.warning("event=read_refused_by_database camera_id=%s error=%s", reads[0].data.camera_id,
                    exc.__class__.__name__)
        return [IngestError("invalid_payload", "the database refused a value of this read "
                            f"({exc.__class__.__name__}); do not send it again")]


def _one_by_one(session: Session, store: ImageStore, settings: IngestSettings,
                reads: list[PreparedRead]) -> list[Outcome]:
    outcomes: list[Outcome] = []
    for read in reads:
        try:
            outcomes.append(ingest_reads(session, store, settings, [read])[0])
        except IngestError as exc:
            outcomes.append(exc)
        except Exception:
            log.exception("event=ingest_failed reads=1")
            outcomes.append(IngestError("unavailable", "the server could not store this now; retry later"))
    return outcomes


def _store_batch(session: Session, store: ImageStore, settings: IngestSettings,
                 reads: list[PreparedRead]) -> list[Outcome]:
    """ingest_reads' one transaction; raises what the database or a conversion raised."""
    now = utcnow()
    outcomes: list[Outcome | None] = [None] * len(reads)
    try:
        with database_errors(session):
            cameras = _cameras_for(session, reads, settings, now, outcomes)
            keys = [r.key for r, o in zip(reads, outcomes, strict=True) if o is None and r.key]
            earlier = _earlier_reads(session, keys)
    except IngestError as exc:
        return [exc] * len(reads)
    todo: list[int] = []
    first_of: dict[tuple[str, str], int] = {}
    for i, read in enumerate(reads):
        if outcomes[i] is not None:
            continue
        if read.key in earlier:
            outcomes[i] = earlier[read.key]
        elif read.key in first_of:
            continue  # the same read twice in one batch: answered from the first below
        else:
            if read.key:
                first_of[read.key] = i
            todo.append(i)
    saved = _save_images(store, settings, [reads[i] for i in todo], now)
    stored_files = [s for s in saved if isinstance(s, StoredImage)]
    rows = []
    for i, result in zip(todo, saved, strict=True):
        if isinstance(result, IngestError):
            outcomes[i] = result
        else:
            rows.append((i, result))
    try:
        with database_errors(session):
            results = _insert_reads(session, cameras, [(reads[i], s) for i, s in rows], now, settings)
            session.commit()
    except IngestError as exc:
        store.delete(*_paths(stored_files))
        for i, _ in rows:
            outcomes[i] = exc
        results = []
    except BaseException:
        session.rollback()
        store.delete(*_paths(stored_files))
        raise
    for (i, _), result in zip(rows, results, strict=False):
        outcomes[i] = result
    for i, read in enumerate(reads):
        if outcomes[i] is None:  # a repeat within the batch: the first one's outcome
            first = outcomes[first_of[read.key]]
            outcomes[i] = (ReadResult(first.record_id, True, first.blacklisted, first.camera_id)
                           if isinstance(first, ReadResult) else first)
    return outcomes  # type: ignore[return-value]


def warm_up(session: Session, now: datetime) -> None:
    """Run a batch's lookups once with keys that match nothing, then roll back.

    A new store worker's first batch then finds its connection open, its statements compiled
    and the tables already looked up by its PostgreSQL backend."""
    session.scalars(select(Camera).where(Camera.id.in_([""]))).all()
    _earlier_reads(session, [("", "")])
    current_hotlist(session, now)  # the blacklist index, built before the first batch needs it
    session.rollback()


def _earlier(session: Session, read: PreparedRead) -> Outcome | None:
    with database_errors(session):
        earlier = _earlier_reads(session, [read.key] if read.key else [])
        session.rollback()
    return earlier.get(read.key)


def _drop_dangling_key(session: Session, read: PreparedRead) -> None:
    """Delete the read's dedupe key if no stored read answers to it (its row deleted by hand in SQL, or
    its received_at changed), so that the resend is stored as new instead of refused for ever. A key that
    another transaction is committing is not seen here, and a committed one is seen with its read (both
    come in one transaction), so a live key is never deleted."""
    if read.key is None:
        return
    with database_errors(session):
        answered = exists().where(Record.id == RecordKey.record_id,
                                  Record.received_at == RecordKey.received_at)
        gone = session.execute(delete(RecordKey).where(RecordKey.camera_id == read.key[0],
                                                        RecordKey.event_id == read.key[1], ~answered))
        session.commit()
    if gone.rowcount:
        log.warning("event=dangling_key_dropped camera_id=%s event_id=%r", read.key[0], read.key[1])


def _cameras_for(session: Session, reads: list[PreparedRead], settings: IngestSettings, now: datetime,
                 outcomes: list) -> dict[str, Camera]:
    """Load the batch's cameras in one query (creating new ones in open mode); refuse wrong tokens."""
    ids = sorted({read.data.camera_id for read in reads})
    cameras = {c.id: c for c in session.scalars(select(Camera).where(Camera.id.in_(ids)))}
    for i, read in enumerate(reads):
        camera_id = read.data.camera_id
        if settings.auth == "token":
            camera = cameras.get(camera_id)
            try:
                if not read.trusted:
                    refuse_wrong_token(read, camera.token_hash if camera else None)
                elif camera is None:
                    raise IngestError("unauthorized", "there is no camera with this id (with "
                                      "INGEST_AUTH=token admins create cameras)", "camera_id")
            except IngestError as exc:
                outcomes[i] = exc
        elif camera_id not in cameras:
            cameras[camera_id] = authorize_camera(session, camera_id, None, settings.auth, now)
    return cameras


def _earlier_reads(session: Session, keys: list[tuple[str, str]]) -> dict[tuple[str, str], ReadResult]:
    """Return the stored reads among (camera_id, event_id) pairs, as duplicate answers."""
    if not keys:
        return {}
    # The exact pairs, one probe each of lpr_record_keys' primary key (SPEC §2.5; a table of its own, as
    # partitioned lpr_records can hold no unique (camera_id, event_id), SPEC §14), joined to the read on
    # (id, received_at) so that PostgreSQL looks in its partition only. A tuple IN: two IN lists, one per
    # column, read every key of the batch's cameras instead.
    query = select(Record.id, RecordKey.camera_id, RecordKey.event_id, Record.blacklisted).join(
        Record, (Record.id == RecordKey.record_id) & (Record.received_at == RecordKey.received_at)).where(
        tuple_(RecordKey.camera_id, RecordKey.event_id).in_(sorted(set(keys))))
    return {
        (row.camera_id, row.event_id): ReadResult(row.id, True, row.blacklisted, row.camera_id)
        for row in session.execute(query)
    }


def _save_images(store: ImageStore, settings: IngestSettings, reads: list[PreparedRead],
                 now: datetime) -> list[StoredImage | IngestError | None]:
    """Check the reads' images and write them durably, together; an image that fails refuses its read.

    The store decodes and checks each image where it writes it (in the daemon, a store worker
    process), so an image that is not base64, not a JPEG/PNG, truncated or too big is refused
    here, after its read's fields, token and repeat were checked."""
    jobs = [(SentImage(read.data.image_data, settings.image_max_bytes, settings.image_max_pixels)
             if read.data.image_data else None, read.data.camera_id) for read in reads]
    answers: list[StoredImage | IngestError | None] = []
    for result in store.save_many(jobs, now):
        if isinstance(result, ImageRejected):
            answers.append(IngestError("invalid_image", str(result), "image_data"))
        elif isinstance(result, OSError):  # a full or read-only disk, an object store down or refusing
            log.warning("event=image_store_unavailable error=%r", str(result))
            answers.append(IngestError(
                "unavailable", "the image store cannot take the write now; retry later"))
        else:
            answers.append(result)
    return answers


def _paths(stored: list[StoredImage]) -> list[str]:
    return [path for s in stored for path in (s.path, s.thumbnail_path)]


REVIEWED_MATCHES = ("lookalike", "fuzzy")  # hits an operator should confirm (SPEC §10 "Review")


def needs_review(confidence: float | None, hits, settings: IngestSettings) -> bool:
    """Whether a read waits on /review: under REVIEW_CONFIDENCE, or hit by a look-alike or fuzzy entry."""
    return (confidence is not None and confidence < settings.review_confidence) or \
        any(hit.match_type in REVIEWED_MATCHES for hit in hits)


def _record_row(read: PreparedRead, camera: Camera, now: datetime, settings: IngestSettings,
                stored: StoredImage | None, hits) -> dict[str, Any]:
    data = read.data
    return {
        "camera_id": camera.id, "event_id": data.event_id, "plate_number": data.plate_number,
        "plate_normalized": read.plate, "province": read.parsed.province,
        "province_code": read.parsed.province_code, "plate_format": read.parsed.format,
        "confidence": read.confidence,
        "captured_at": to_utc(data.timestamp, settings.timezone, now), "received_at": now,
        "location": data.location or camera.location, "latitude": data.latitude,
        "longitude": data.longitude, "vehicle_type": data.vehicle_type,
        "vehicle_color": data.vehicle_color, "direction": data.direction, "extra": read.metadata,
        "image_path": stored.path if stored else None,
        "thumbnail_path": stored.thumbnail_path if stored else None,
        "image_sha256": stored.sha256 if stored else None,
        "image_bytes": stored.size if stored else None,
        "blacklisted": bool(hits),
        "review_state": "pending" if needs_review(read.confidence, hits, settings) else None,
    }


def _insert_reads(session: Session, cameras: dict[str, Camera],
                  reads: list[tuple[PreparedRead, StoredImage | None]], now: datetime,
                  settings: IngestSettings) -> list[ReadResult]:
    """Insert the rows (one statement), their blacklist hits, alerts, visits and webhook events; the
    caller commits."""
    if not reads:
        return []
    hits = match_reads(session, [(read.plate, read.data.plate_number, read.parsed.province_code)
                                 for read, _ in reads], now)
    known = current_known(session)
    rows = [_record_row(read, cameras[read.data.camera_id], now, settings, stored, found)
            for (read, stored), found in zip(reads, hits, strict=True)]
    ids = session.scalars(insert(Record).returning(Record.id, sort_by_parameter_order=True), rows).all()
    # The dedupe keys in the rows' transaction: a copy stored meanwhile elsewhere fails it here (SPEC §2.5).
    # In one order, so that two batches sharing keys wait for each other instead of deadlocking.
    keys = sorted(({"camera_id": row["camera_id"], "event_id": row["event_id"], "record_id": record_id,
                    "received_at": row["received_at"]} for row, record_id in zip(rows, ids, strict=True)
                   if row["event_id"] is not None), key=lambda key: (key["camera_id"], key["event_id"]))
    if keys:
        session.execute(insert(RecordKey), keys)
    changed = {read.data.camera_id for read, _ in reads
               if touch_camera(cameras[read.data.camera_id], now, read.data.hostname)}
    results, pending, gate_reads = [], [], []
    raised: list[Raised] = []  # the batch's alerts, new or repeated, for the outbox
    repeat = settings.alert_repeat_seconds
    for (read, _), row, record_id, found in zip(reads, rows, ids, hits, strict=True):
        camera = cameras[read.data.camera_id]
        plate, province = read.plate, read.parsed.province_code
        entries = [hit.entry for hit in found]
        detections = [BlacklistDetection(record_id=record_id, entry_id=hit.entry.id, detected_at=now,
                                         match_type=hit.match_type) for hit in found]
        session.add_all(detections)
        others = []
        if camera.allow_group and known.in_group(plate, province, camera.allow_group, now) is None:
            alert = repeat_of(session, "not_on_list", plate, camera.id, now, repeat)
            raised.append(Raised(alert or raise_alert(
                session, "not_on_list", now, plate=plate, province_code=province, camera_id=camera.id,
                record_id=record_id, detail={"group": camera.allow_group}), alert is None))
            others.append(raised[-1].alert)
        kind = visit_kind(camera, read.data.direction)
        if kind is not None:
            gate_reads.append(GateRead(record_id, plate, province, camera.id, kind,
                                       known.stay_group(plate, province, now)))
        record = record_json(dict(row, id=record_id), camera.name, known.first(plate, province, now))
        pending.append((record, entries, detections, others))
        results.append(ReadResult(record_id, False, bool(entries), camera.id))
    session.flush()  # detection ids, for their alerts
    hit_alerts = [[_hit_alert(session, record, entry, d, now, repeat, raised)
                   for entry, d in zip(entries, detections, strict=True)]
                  for record, entries, detections, _ in pending]
    apply_visits(session, gate_reads, now)
    session.flush()  # alert ids, for the events
    webhook_events = []
    for result, (record, entries, detections, others), hit_rows in zip(results, pending, hit_alerts,
                                                                        strict=True):
        alerts = [blacklist_alert(d.id, d.match_type, record, entry, alert.id, alert.repeat_count)
                  for entry, d, alert in zip(entries, detections, hit_rows, strict=True)]
        result.events = [("new_record", record), *(("blacklist_alert", alert) for alert in alerts),
                         *(("alert", alert_event(other, record)) for other in others)]
        if result.camera_id in changed:  # the camera's last_seen moved: once per camera and batch
            changed.discard(result.camera_id)
            camera = cameras[result.camera_id]
            result.events.append(("camera_status", camera_status(camera.id, last_seen=camera.last_seen)))
        camera = cameras[result.camera_id]
        if camera.offline_alert_id is not None:  # silent until this read (SPEC §11 "Camera offline")
            result.events += resolve_silence(session, camera, now)
        webhook_events += [("record.created", record), *(("blacklist.hit", alert) for alert in alerts)]
    # Webhook events and the new alerts' deliveries are queued in this transaction; the webhook worker
    # and the alert sender send them later, off the camera's wait.
    enqueue_webhooks(session, webhook_events, now)
    Outbox(session, settings.timezone).queue(raised, now)
    count_reads(session, rows, settings.timezone)  # the analytics' counts (SPEC §12), in this transaction
    return results


def _hit_alert(session: Session, record: dict[str, Any], entry, detection: BlacklistDetection, now: datetime,
               repeat: int, raised: list[Raised]):
    """The alert of one blacklist hit: the earlier one again if this repeats it, else a new one."""
    plate, camera_id = record["plate_normalized"], record["camera_id"]
    alert = repeat_of(session, "blacklist", plate, camera_id, now, repeat, entry_id=entry.id)
    if alert is None:
        alert = raise_alert(session, "blacklist", now, plate=plate, province_code=record["province_code"],
                            camera_id=camera_id, record_id=record["id"], detection_id=detection.id,
                            detail={"entry_id": entry.id, "match_type": detection.match_type,
                                    "category": entry.category})
        raised.append(Raised(alert, True, entry.category))
    else:
        raised.append(Raised(alert, False, entry.category))
    return alert
