"""Corrections of misreads (SPEC §10 "Corrections"): an operator types the plate the camera got wrong.

`plate_number` stays as the camera sent it; `plate_corrected` keeps what was typed and the plate the
server made of it (`plate_normalized`, province, format) follows, so the plate's page, search and
statistics count the read under its real plate. The lists are matched again as they are now: a
correction onto a blacklisted plate is a hit (its detection, its alert, its live `blacklist_alert`),
one onto a plate not on a gate's list raises `not_on_list`, one onto a plate that is resolves that
alert; the read's visits follow the new plate. The caller commits, then publishes `result.events`.
"""

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from .alerts import raise_alert
from .analytics_counts import follow_correction
from .audit import audit
from .hotlist import match_reads
from .known import current_known
from .models import Alert, BlacklistDetection, Camera, Record, User, Visit
from .plates import MAX_PLATE_LENGTH, ParsedPlate, find_province, is_valid_normalized, parse_plate
from .webhooks import enqueue as enqueue_webhooks
from .wire import alert_event, blacklist_alert, record_json

CORRECTED_FIELDS = ("plate_corrected", "plate_normalized", "province", "province_code", "plate_format",
                    "blacklisted", "review_state")


class CorrectionError(ValueError):
    """Bad input for a correction: nothing was changed. `field` names the request field at fault."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field


@dataclass
class Correction:
    """What a correction did: the live events to publish after the commit, and what changed."""

    record: Record
    before: dict[str, Any]
    after: dict[str, Any]
    events: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    visits_kept: list[int] = field(default_factory=list)  # open visits left alone: the new plate has one

    @property
    def changed(self) -> bool:
        return self.before != self.after


def _snapshot(record: Record) -> dict[str, Any]:
    return {name: getattr(record, name) for name in CORRECTED_FIELDS}


def parse_correction(plate_text: Any, province: Any):
    """The plate an operator typed, parsed as a camera's read is; CorrectionError when it is not one."""
    if not isinstance(plate_text, str) or not plate_text.strip():
        raise CorrectionError("plate_corrected", "type the plate as it is on the vehicle")
    if len(plate_text) > 64:
        raise CorrectionError("plate_corrected", "the plate is longer than 64 characters")
    if province is not None and not isinstance(province, str):
        raise CorrectionError("province", "the province is a name or an ISO 3166-2:TH code (TH-10)")
    province = (province or "").strip() or None
    if province is not None and find_province(province) is None:
        raise CorrectionError("province", f"{province!r} is not a Thai province")
    parsed = parse_plate(plate_text, province)
    if not is_valid_normalized(parsed.normalized):
        raise CorrectionError("plate_corrected", f"the plate is empty or over {MAX_PLATE_LENGTH} "
                                                 "characters once normalised")
    return parsed


def correct_record(session: Session, record: Record, plate_text: Any, province: Any, user: User,
                   now: datetime, ip: str | None = None, *, timezone: str) -> Correction:
    """Correct `record` to the plate `plate_text` (as typed) in `province` (a name or code). Without a
    province the one the typed text names counts, else the read keeps its own; an empty one clears it.
    Raises CorrectionError (nothing changed) for a plate that is not one or a province not known.
    The analytics' counts follow the correction (SPEC §10), their days in `timezone`. The caller commits."""
    parsed = parse_correction(plate_text, province)
    if province is None and parsed.province is None and record.province:
        # No province sent and none in the text: the read keeps the one it has.
        parsed = ParsedPlate(parsed.normalized, record.province, record.province_code, parsed.format)
    before = _snapshot(record)
    plate_text = plate_text.strip()
    record.plate_corrected = plate_text
    record.plate_normalized = parsed.normalized
    record.province, record.province_code, record.plate_format = parsed.province, parsed.province_code, \
        parsed.format
    record.corrected_by, record.corrected_at = user.username, now
    record.review_state, record.reviewed_by, record.reviewed_at = "corrected", user.username, now
    camera = session.get(Camera, record.camera_id)
    correction = Correction(record, before, {})
    _match_blacklist(session, record, camera, now, correction)
    _match_known(session, record, camera, now, correction)
    _follow_visits(session, record, correction)
    correction.after = _snapshot(record)
    follow_correction(session, before, record, timezone)
    audit(session, "record.correct", user=user, target=f"record:{record.id}", ip=ip,
          detail={"plate_number": record.plate_number, "before": _shown(before),
                  "after": _shown(correction.after)})
    return correction


def _shown(snapshot: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in snapshot.items() if key not in ("blacklisted", "review_state")}


def _match_blacklist(session: Session, record: Record, camera: Camera | None, now: datetime,
                     correction: Correction) -> None:
    """Match the corrected plate with the process's blacklist index: a hit of an entry this read has
    not hit yet gets its detection and alert; the read's hit alerts of entries that no longer match it
    are resolved (their detections stay: the read did raise them)."""
    [hits] = match_reads(session, [(record.plate_normalized, record.plate_corrected, record.province_code)],
                         now)
    earlier = session.scalars(
        select(BlacklistDetection).where(BlacklistDetection.record_id == record.id)).all()
    seen = {d.entry_id for d in earlier}
    matched = {hit.entry.id for hit in hits}
    new = [hit for hit in hits if hit.entry.id not in seen]
    detections = [BlacklistDetection(record_id=record.id, entry_id=hit.entry.id, detected_at=now,
                                     match_type=hit.match_type) for hit in new]
    session.add_all(detections)
    stale = [d.id for d in earlier if d.entry_id not in matched]
    if stale:
        for alert in session.scalars(select(Alert).where(Alert.trigger == "blacklist",
                                                         Alert.detection_id.in_(stale),
                                                         Alert.resolved_at.is_(None))):
            alert.resolved_at = now
    record.blacklisted = bool(hits)
    if not new:
        return
    session.flush()  # detection ids, for their alerts
    alerts = [raise_alert(session, "blacklist", now, plate=record.plate_normalized,
                          province_code=record.province_code, camera_id=record.camera_id,
                          record_id=record.id, detection_id=d.id,
                          detail={"entry_id": hit.entry.id, "match_type": d.match_type,
                                  "category": hit.entry.category, "correction": True})
              for hit, d in zip(new, detections, strict=True)]
    session.flush()  # alert ids, for the events
    shown = _record_shown(session, record, camera, now)
    events = [blacklist_alert(d.id, d.match_type, shown, hit.entry, alert.id)
              for hit, d, alert in zip(new, detections, alerts, strict=True)]
    correction.events += [("blacklist_alert", event) for event in events]
    enqueue_webhooks(session, [("blacklist.hit", event) for event in events], now)


def _match_known(session: Session, record: Record, camera: Camera | None, now: datetime,
                 correction: Correction) -> None:
    """At a camera with an allow_group: a corrected plate not on the list raises not_on_list (unless the
    read has one open already); one that is resolves the read's open not_on_list alert."""
    if camera is None or not camera.allow_group:
        return
    listed = current_known(session).in_group(record.plate_normalized, record.province_code,
                                             camera.allow_group, now)
    open_alerts = session.scalars(select(Alert).where(Alert.record_id == record.id,
                                                      Alert.trigger == "not_on_list",
                                                      Alert.resolved_at.is_(None))).all()
    if listed is not None:
        for alert in open_alerts:
            alert.resolved_at = now
    elif not open_alerts:
        alert = raise_alert(session, "not_on_list", now, plate=record.plate_normalized,
                            province_code=record.province_code, camera_id=camera.id, record_id=record.id,
                            detail={"group": camera.allow_group, "correction": True})
        session.flush()
        correction.events.append(("alert", alert_event(alert, _record_shown(session, record, camera, now))))


def _follow_visits(session: Session, record: Record, correction: Correction) -> None:
    """The visits this read opened or closed take its new plate; an open one stays as it is when the new
    plate has an open visit already (one open visit per plate)."""
    visits = session.scalars(select(Visit).where(
        or_(Visit.entry_record_id == record.id, Visit.exit_record_id == record.id))).all()
    for visit in visits:
        if visit.plate_normalized == record.plate_normalized:
            visit.province_code = record.province_code
            continue
        if visit.exited_at is None:
            clash = session.scalar(select(Visit.id).where(Visit.plate_normalized == record.plate_normalized,
                                                          Visit.exited_at.is_(None), Visit.id != visit.id))
            if clash is not None:
                correction.visits_kept.append(visit.id)
                continue
        visit.plate_normalized, visit.province_code = record.plate_normalized, record.province_code
    session.flush()


def _record_shown(session: Session, record: Record, camera: Camera | None, now: datetime) -> dict[str, Any]:
    known = current_known(session).first(record.plate_normalized, record.province_code, now)
    return record_json(record, camera.name if camera else None, known)
