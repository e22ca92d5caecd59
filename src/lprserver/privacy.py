"""A data subject's requests about a plate (SPEC §15 "A plate's data on request"): export everything
held about it as one zip, or erase its reads, images and what was derived from them.

A plate is its normalised form (plate_history.plate_from_path); its reads are the records whose
`plate_normalized` is it (a corrected read counts under the plate it was corrected to). Both follow the
caller's `Scope`: a site-limited admin exports and erases only their sites' reads, and the visits and
alerts of their sites' cameras. Blacklist entries and known plates are global (the operator's own
lists): the export shows them, the erase leaves them. The caller commits.
"""

import csv
import io
import json
import shutil
import tempfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import IO, Any
from zoneinfo import ZoneInfo

from sqlalchemy import delete, func, or_, select
from sqlalchemy.orm import Session

from .analytics_counts import local_day
from .audit import audit
from .audit_list import audit_json
from .image_store import ImageStore
from .known import known_for
from .models import (
    Alert,
    AnalyticsPlateDay,
    AuditEntry,
    BlacklistDetection,
    BlacklistEntry,
    Camera,
    KnownPlate,
    Record,
    User,
    Visit,
)
from .plate_history import blacklist_entries, known_entries
from .retention import CleanupReport, delete_batch
from .sites import EVERYWHERE, Scope
from .visit_list import max_stays, visit_json
from .wire import alert_json, record_json

CHUNK = 500  # records read (and deleted) at a time: a plate with many reads never sits in memory whole
SPOOL_BYTES = 8 * 1024 * 1024  # the zip stays in memory up to this size, then goes to a temporary file
REASON_MAX = 500
CSV_FIELDS = ("id", "captured_at", "received_at", "camera_id", "camera_name", "plate_number",
              "plate_normalized", "province", "province_code", "plate_format", "confidence", "location",
              "latitude", "longitude", "vehicle_type", "vehicle_color", "direction", "blacklisted",
              "image_sha256", "image_file", "event_id", "plate_corrected", "corrected_by", "corrected_at",
              "review_state", "metadata")
HIT_FIELDS = ("id", "record_id", "entry_id", "match_type", "detected_at", "acknowledged_by",
              "acknowledged_at", "plate_number", "camera_id", "license_plate_text", "category", "reason")
VISIT_FIELDS = ("id", "plate", "province_code", "group", "entered_at", "entry_camera", "entry_record_id",
                "exited_at", "exit_camera", "exit_record_id", "open", "stay_seconds", "overstay")
# What the zip holds, in the order README.txt lists it: (name, Thai, English).
FILES = (
    ("README.txt", "ไฟล์นี้: อธิบายแต่ละไฟล์ในชุดข้อมูล ทำเมื่อใดและโดยใคร",
     "this file: what each file is, when the export was made and by whom"),
    ("reads.csv", "การอ่านป้ายทะเบียนทุกครั้ง (หนึ่งแถวต่อการอ่าน) เวลาเป็น ISO 8601 พร้อมส่วนต่างจาก UTC",
     "every read of the plate, one row each; times are ISO 8601 with their offset from UTC"),
    ("reads.json", "การอ่านชุดเดียวกันในรูป JSON (รูปแบบเดียวกับ GET /api/records/<id>)",
     "the same reads as JSON, each as GET /api/records/<id> answers it"),
    ("images/", "ภาพเต็มของแต่ละการอ่าน ตั้งชื่อตามหมายเลขระเบียน (images/<id>.jpg)",
     "the full image of each read, named by its record id (images/<id>.jpg)"),
    ("hits.csv", "การตรวจพบในบัญชีดำ (blacklist) ของการอ่านเหล่านี้",
     "the blacklist detections (hits) of these reads"),
    ("hits.json", "การตรวจพบชุดเดียวกันในรูป JSON", "the same hits as JSON"),
    ("alerts.json", "การแจ้งเตือนที่เกิดจากการอ่านหรือการเข้า-ออกเหล่านี้",
     "the alerts these reads and visits raised"),
    ("visits.csv", "การเข้า-ออกของรถคันนี้ (เวลาเข้า เวลาออก กล้อง)",
     "the plate's visits: when it entered and left, and at which cameras"),
    ("visits.json", "การเข้า-ออกชุดเดียวกันในรูป JSON", "the same visits as JSON"),
    ("corrections.json", "การแก้ไขป้ายที่อ่านผิด: ระเบียนที่ถูกแก้ และบันทึกการแก้ไขจากบันทึกการตรวจสอบ",
     "corrections of misreads: the corrected reads, and the record.correct entries of the audit log"),
    ("lists.json", "รายการที่ระบุป้ายนี้: บัญชีดำ และรายการรถที่รู้จัก (known plates)",
     "the lists naming the plate: blacklist entries and known plates"),
)


class PrivacyError(ValueError):
    """Bad input for an erase (nothing was changed); `field` names the request field at fault."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field


@dataclass
class PlateExport:
    """The zip (a rewound file, in memory or on disk) and what it holds."""

    file: IO[bytes]
    counts: dict[str, int] = field(default_factory=dict)


def _reads(plate: str, scope: Scope):
    return select(Record).where(Record.plate_normalized == plate, scope.cameras_clause(Record.camera_id))


def _record_ids(plate: str, scope: Scope):
    return _reads(plate, scope).with_only_columns(Record.id)


def iter_reads(session: Session, plate: str, scope: Scope = EVERYWHERE) -> Iterator[list[Record]]:
    """The plate's reads in `scope`, oldest first, CHUNK at a time (each chunk let go before the next)."""
    last = 0
    while True:
        rows = list(session.scalars(_reads(plate, scope).where(Record.id > last).order_by(Record.id)
                                    .limit(CHUNK)))
        if not rows:
            return
        yield rows
        last = rows[-1].id
        for row in rows:
            session.expunge(row)


def _visits(plate: str, scope: Scope):
    query = select(Visit).where(Visit.plate_normalized == plate)
    if scope.limited:
        query = query.where(or_(scope.cameras_clause(Visit.entry_camera_id),
                                scope.cameras_clause(Visit.exit_camera_id)))
    return query


def _alerts(plate: str, scope: Scope):
    """The alerts of the plate's reads and visits, and those naming the plate at a camera in scope."""
    return select(Alert).where(or_(
        Alert.record_id.in_(_record_ids(plate, scope)),
        Alert.visit_id.in_(_visits(plate, scope).with_only_columns(Visit.id)),
        (Alert.plate == plate) & scope.cameras_clause(Alert.camera_id)))


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def _cell(value: Any) -> Any:
    if isinstance(value, dict | list):
        value = json.dumps(value, ensure_ascii=False, sort_keys=True)
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value  # keep spreadsheets from running a plate as a formula
    return value


def _image_name(record: Record) -> str | None:
    if not record.image_path:
        return None
    suffix = record.image_path.rsplit(".", 1)[-1].lower() if "." in record.image_path else "jpg"
    return f"images/{record.id}.{suffix}"


class _JsonList:
    """A JSON array written an item at a time into a temporary file."""

    def __init__(self):
        self.file = tempfile.SpooledTemporaryFile(SPOOL_BYTES, mode="w+t", encoding="utf-8")
        self.count = 0
        self.file.write("[")

    def add(self, item: dict[str, Any]) -> None:
        text = json.dumps(_jsonable(item), ensure_ascii=False)
        self.file.write(("\n  " if self.count == 0 else ",\n  ") + text)
        self.count += 1

    def close(self) -> None:
        self.file.write("\n]\n" if self.count else "]\n")


def _copy_image(zf: zipfile.ZipFile, store: ImageStore, record: Record, name: str) -> None:
    """Stream a read's image from the store into the zip as it is (never read whole into memory). A
    store that cannot be read raises ImageStoreUnavailable: an export is whole or not made."""
    info = zipfile.ZipInfo(name, date_time=record.received_at.timetuple()[:6])
    info.compress_type = zipfile.ZIP_STORED  # JPEG and PNG are compressed already
    with store.open(record.image_path) as source, zf.open(info, "w") as out:
        shutil.copyfileobj(source, out, 64 * 1024)


def _copy_into(zf: zipfile.ZipFile, name: str, text_file) -> None:
    text_file.seek(0)
    with zf.open(name, "w") as out, io.TextIOWrapper(out, encoding="utf-8", newline="") as writer:
        shutil.copyfileobj(text_file, writer)
    text_file.close()


def _write_csv(zf: zipfile.ZipFile, name: str, fields: tuple[str, ...], rows: list[dict[str, Any]]) -> None:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(fields)
    for row in rows:
        writer.writerow([_cell(_jsonable(row.get(f))) for f in fields])
    zf.writestr(name, "\ufeff" + out.getvalue())  # the BOM tells spreadsheet programs it is UTF-8


def _write_json(zf: zipfile.ZipFile, name: str, value: Any) -> None:
    zf.writestr(name, json.dumps(_jsonable(value), ensure_ascii=False, indent=2) + "\n")


def has_data(session: Session, plate: str, scope: Scope = EVERYWHERE) -> bool:
    """Whether anything is held about the plate that `scope` may see: reads, visits or list entries."""
    for query in (_record_ids(plate, scope), _visits(plate, scope).with_only_columns(Visit.id),
                  select(BlacklistEntry.id).where(BlacklistEntry.plate_normalized == plate),
                  select(KnownPlate.id).where(KnownPlate.plate_normalized == plate)):
        if session.scalar(query.limit(1)) is not None:
            return True
    return False


def plate_export_zip(session: Session, store: ImageStore, plate: str, scope: Scope = EVERYWHERE,
                     *, user: User | None, now: datetime, timezone: str) -> PlateExport | None:
    """Everything held about `plate` (normalised) in `scope`, as a zip (see FILES); None when nothing is.
    The images are copied from the store as they are (their files stream into the zip, never read whole
    into memory); a read whose file is gone has `image_file` empty. The caller audits and commits."""
    if not has_data(session, plate, scope):
        return None
    tz = ZoneInfo(timezone)
    out = tempfile.SpooledTemporaryFile(SPOOL_BYTES)
    try:
        counts = _write_zip(session, store, plate, scope, out, user=user, now=now, tz=tz)
    except BaseException:
        out.close()
        raise
    out.seek(0)
    return PlateExport(out, counts)


def _write_zip(session: Session, store: ImageStore, plate: str, scope: Scope, out: IO[bytes], *,
               user: User | None, now: datetime, tz: ZoneInfo) -> dict[str, int]:
    names = dict(session.execute(select(Camera.id, Camera.name)).all())
    counts = {"reads": 0, "images": 0, "hits": 0, "alerts": 0, "visits": 0, "corrections": 0,
              "blacklist_entries": 0, "known_plates": 0}
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        reads_csv = tempfile.SpooledTemporaryFile(SPOOL_BYTES, mode="w+t", encoding="utf-8", newline="")
        reads_csv.write("\ufeff")
        writer = csv.writer(reads_csv)
        writer.writerow(CSV_FIELDS)
        reads_json = _JsonList()
        corrected: list[dict[str, Any]] = []
        for chunk in iter_reads(session, plate, scope):
            known = known_for(session, [(r.plate_normalized, r.province_code) for r in chunk], now)
            for record in chunk:
                shown = record_json(record, names.get(record.camera_id),
                                    known.get((record.plate_normalized, record.province_code)))
                image = _image_name(record)
                if image is not None:
                    try:
                        _copy_image(zf, store, record, image)
                        counts["images"] += 1
                    except (FileNotFoundError, ValueError):
                        image = None
                shown["image_file"] = image
                reads_json.add(shown)
                writer.writerow([_cell(shown.get(name)) for name in CSV_FIELDS])
                counts["reads"] += 1
                if record.corrected_at is not None:
                    corrected.append({"record_id": record.id, "plate_number": record.plate_number,
                                      "plate_corrected": record.plate_corrected,
                                      "corrected_by": record.corrected_by,
                                      "corrected_at": record.corrected_at})
        reads_json.close()
        _copy_into(zf, "reads.csv", reads_csv)
        _copy_into(zf, "reads.json", reads_json.file)

        hits = _hits(session, plate, scope)
        counts["hits"] = len(hits)
        _write_csv(zf, "hits.csv", HIT_FIELDS, hits)
        _write_json(zf, "hits.json", hits)

        alerts = [alert_json(a) for a in session.scalars(_alerts(plate, scope).order_by(Alert.id))]
        counts["alerts"] = len(alerts)
        _write_json(zf, "alerts.json", alerts)

        limits = max_stays(session)
        visits = [visit_json(v, now, names, limits) for v in session.scalars(_visits(plate, scope)
                                                                               .order_by(Visit.id))]
        counts["visits"] = len(visits)
        _write_csv(zf, "visits.csv", VISIT_FIELDS, visits)
        _write_json(zf, "visits.json", visits)

        entries = correction_entries(session, plate, scope)
        counts["corrections"] = len(corrected) + sum(1 for e in entries if not e["record_is_this_plate"])
        _write_json(zf, "corrections.json", {"corrected_reads": corrected, "audit_entries": entries})

        lists = {"blacklist": blacklist_entries(session, plate, now),
                 "known": known_entries(session, plate, now)}
        counts["blacklist_entries"], counts["known_plates"] = len(lists["blacklist"]), len(lists["known"])
        _write_json(zf, "lists.json", lists)

        zf.writestr("README.txt", readme(plate, scope, user, now, tz, counts))
    return counts


def _hits(session: Session, plate: str, scope: Scope) -> list[dict[str, Any]]:
    from .api.blacklist import detection_json  # the one shape of a hit (GET /api/blacklist/detections)

    rows = session.execute(
        select(BlacklistDetection, Record, BlacklistEntry)
        .join(Record, Record.id == BlacklistDetection.record_id)
        .join(BlacklistEntry, BlacklistEntry.id == BlacklistDetection.entry_id)
        .where(Record.plate_normalized == plate, scope.cameras_clause(Record.camera_id))
        .order_by(BlacklistDetection.id)).all()
    return [_jsonable(detection_json(*row)) for row in rows]


def correction_entries(session: Session, plate: str, scope: Scope = EVERYWHERE) -> list[dict[str, Any]]:
    """The audit log's `record.correct` entries that name the plate, before or after: corrections are
    made by hand (few), so they are read whole and matched here. In a limited scope only entries of
    reads that still exist at a camera it sees."""
    found = []
    for entry in session.scalars(select(AuditEntry).where(AuditEntry.action == "record.correct")
                                 .order_by(AuditEntry.id)):
        detail = entry.detail or {}
        before = (detail.get("before") or {}).get("plate_normalized")
        after = (detail.get("after") or {}).get("plate_normalized")
        if plate not in (before, after):
            continue
        record_id = _record_id(entry.target)
        if scope.limited:
            camera_id = session.scalar(select(Record.camera_id).where(Record.id == record_id)) \
                if record_id is not None else None
            if camera_id is None or not scope.sees_camera(session.get(Camera, camera_id)):
                continue
        found.append({**audit_json(entry), "record_id": record_id, "record_is_this_plate": after == plate})
    return found


def _record_id(target: str | None) -> int | None:
    if target and target.startswith("record:") and target[7:].isdigit():
        return int(target[7:])
    return None


def readme(plate: str, scope: Scope, user: User | None, now: datetime, tz: ZoneInfo,
           counts: dict[str, int]) -> str:
    """README.txt: what each file is, when and by whom the export was made, in Thai and English."""
    made = (f"{now.astimezone(tz).isoformat(timespec='seconds')} ({tz.key}); "
            f"UTC {now.astimezone(ZoneInfo('UTC')).isoformat(timespec='seconds')}")
    who = user.username if user is not None else "-"
    sites = ", ".join(scope.as_list() or []) if scope.limited else None
    lines = [
        f"ข้อมูลที่เก็บเกี่ยวกับป้ายทะเบียน {plate} / Data held about the plate {plate}",
        "",
        "== ภาษาไทย ==",
        f"ป้ายทะเบียน (ทำให้เป็นรูปแบบมาตรฐานแล้ว ไม่รวมจังหวัด): {plate}",
        f"ทำเมื่อ: {made}",
        f"ทำโดย: {who}",
        f"ขอบเขต: เฉพาะไซต์ {sites}" if sites else "ขอบเขต: ทุกไซต์",
        f"จำนวน: การอ่าน {counts['reads']}, ภาพ {counts['images']}, การตรวจพบในบัญชีดำ {counts['hits']}, "
        f"การแจ้งเตือน {counts['alerts']}, การเข้า-ออก {counts['visits']}, การแก้ไข {counts['corrections']}, "
        f"รายการบัญชีดำ {counts['blacklist_entries']}, รถที่รู้จัก {counts['known_plates']}",
        "",
        "ไฟล์:",
        *[f"  {name}: {thai}" for name, thai, _ in FILES],
        "",
        "ข้อมูลนี้ทำขึ้นเพื่อตอบคำขอของเจ้าของข้อมูลตาม พ.ร.บ. คุ้มครองข้อมูลส่วนบุคคล พ.ศ. 2562 (PDPA)",
        "การทำชุดข้อมูลนี้ถูกบันทึกในบันทึกการตรวจสอบ (plate.export)",
        "",
        "== English ==",
        f"Plate (normalised, without its province): {plate}",
        f"Made at: {made}",
        f"Made by: {who}",
        f"Scope: the sites {sites} only" if sites else "Scope: every site",
        f"Counts: reads {counts['reads']}, images {counts['images']}, blacklist hits {counts['hits']}, "
        f"alerts {counts['alerts']}, visits {counts['visits']}, corrections {counts['corrections']}, "
        f"blacklist entries {counts['blacklist_entries']}, known plates {counts['known_plates']}",
        "",
        "Files:",
        *[f"  {name}: {english}" for name, _, english in FILES],
        "",
        "Made to answer a data subject's request under Thailand's Personal Data Protection Act (PDPA).",
        "This export is recorded in the audit log (plate.export).",
        "",
    ]
    return "\n".join(lines)


def clean_reason(reason: Any) -> str:
    """The reason for an erase, stripped: 1-500 characters, else PrivacyError."""
    text = reason.strip() if isinstance(reason, str) else ""
    if not text:
        raise PrivacyError("reason", "give the reason for the erase (the request it answers)")
    if len(text) > REASON_MAX:
        raise PrivacyError("reason", f"the reason is at most {REASON_MAX} characters")
    return text


def erase_plate(session: Session, store: ImageStore, plate: str, scope: Scope = EVERYWHERE, *,
                reason: Any, user: User | None, timezone: str, ip: str | None = None
                ) -> dict[str, int] | None:
    """Erase the plate's reads in `scope` with their images and thumbnails, their blacklist hits, the
    alerts of those reads and of the plate's visits, the visits, and the plate's days in the analytics
    (analytics_plate_days, where no read of it is left that day). Returns {"records": N, "files": M},
    None when there was nothing to erase. PrivacyError (nothing changed) without a reason.

    Rows go in batches through retention.delete_batch, which commits each batch and then unlinks its
    files (a crash leaves files without rows for the sweeper, never a row without its file). The audit
    entry `plate.erase` goes in the first batch's transaction and gets the file count at the end; the
    caller commits that. Blacklist entries and known plates stay, as do the audit log and the counts of
    the analytics that name no plate."""
    reason = clean_reason(reason)
    visits = _visits(plate, scope).with_only_columns(Visit.id)
    counted = {
        "records": session.scalar(select(func.count()).select_from(_record_ids(plate, scope).subquery())),
        "visits": session.scalar(select(func.count()).select_from(visits.subquery())),
        "alerts": session.scalar(select(func.count()).select_from(
            _alerts(plate, scope).with_only_columns(Alert.id).subquery())),
    }
    days = session.scalar(select(func.count()).select_from(AnalyticsPlateDay)
                          .where(AnalyticsPlateDay.plate_normalized == plate))
    if not any(counted.values()) and not (days and not scope.limited):
        return None
    detail = {"reason": reason, **counted, "files": None, **scope.audit_detail()}
    entry = audit(session, "plate.erase", user=user, target=f"plate:{plate}", detail=detail, ip=ip)
    session.execute(delete(Alert).where(Alert.id.in_(
        _alerts(plate, scope).with_only_columns(Alert.id).scalar_subquery())).execution_options(
        synchronize_session=False))
    session.execute(delete(Visit).where(Visit.id.in_(visits.scalar_subquery()))
                    .execution_options(synchronize_session=False))
    report = CleanupReport()
    while True:
        ids = list(session.scalars(_record_ids(plate, scope).order_by(Record.id).limit(CHUNK)))
        if not ids:
            break
        delete_batch(session, store, ids, report)  # commits this batch (and what came before it)
    _forget_plate_days(session, plate, timezone)
    result = {"records": report.records, "files": report.files}
    entry.detail = {**detail, **result, "bytes_freed": report.bytes_freed}
    return result


def _forget_plate_days(session: Session, plate: str, timezone: str) -> None:
    """Delete the plate's rows of analytics_plate_days, but for days a read of it is still kept on (the
    reads of other sites, after a site-limited erase). The day's counts, which name no plate, stay."""
    tz = ZoneInfo(timezone)
    kept: set[date] = set()
    for moment in session.scalars(select(Record.received_at).where(Record.plate_normalized == plate)):
        kept.add(local_day(moment, tz))
    query = delete(AnalyticsPlateDay).where(AnalyticsPlateDay.plate_normalized == plate)
    if kept:
        query = query.where(AnalyticsPlateDay.day.not_in(sorted(kept)))
    session.execute(query.execution_options(synchronize_session=False))
