"""What leaves the server: a record's JSON and each live event, one shape each.

The API's records (docs/api.md), the live events browsers receive (README "Live updates":
`new_record`, `blacklist_alert`, `alert`, `camera_status`), the dashboard's feed and `/live/missed` all take
their shapes from here, so a field added to one is in all of them.
"""

import math
from collections.abc import Mapping
from datetime import datetime
from typing import Any

RECORD_FIELDS = ("id", "camera_id", "event_id", "plate_number", "plate_normalized", "province",
                 "province_code", "plate_format", "confidence", "location", "latitude", "longitude",
                 "vehicle_type", "vehicle_color", "direction",
                 "blacklisted", "image_sha256", "plate_corrected", "corrected_by", "review_state")
ALERT_FIELDS = ("id", "trigger", "plate", "province_code", "camera_id", "record_id", "detection_id",
                "visit_id")


def record_json(record: Any, camera_name: str | None = None, known: Any = None) -> dict[str, Any]:
    """A record as the API and the live channel show it. `record` is a Record, or the row the pipeline
    inserted (a mapping with its id), so a live event costs no query. `known` is the known plate it is
    (known.KnownEntry), if any: its name and group (SPEC §10)."""
    get = record.get if isinstance(record, Mapping) else lambda name: getattr(record, name)
    shown = {name: get(name) for name in RECORD_FIELDS}
    record_id = shown["id"]
    shown.update({
        "camera_name": camera_name,
        "known": known.shown() if known is not None else None,
        "captured_at": _iso(get("captured_at")),
        "received_at": _iso(get("received_at")),
        "corrected_at": _iso(get("corrected_at")),
        "image_url": f"/api/records/{record_id}/image" if get("image_path") else None,
        "thumbnail_url": f"/api/records/{record_id}/thumbnail" if get("thumbnail_path") else None,
        "metadata": _finite(get("extra") or {}),
    })
    return shown


def blacklist_alert(detection_id: int, match_type: str, record: dict[str, Any], entry: Any,
                    alert_id: int | None = None, repeat_count: int = 1) -> dict[str, Any]:
    """The `blacklist_alert` event of one hit: the record's JSON and the entry that matched it (a
    BlacklistEntry or the blacklist index's HotEntry), with how it matches reads, and the hit's alert."""
    return {
        "detection_id": detection_id,
        "alert_id": alert_id,
        "repeat_count": repeat_count,  # > 1: the alert's card is already shown (SPEC §11 repeats)
        "match_type": match_type,
        "record": record,
        "entry": {"id": entry.id, "license_plate_text": entry.license_plate_text,
                  "plate_normalized": entry.plate_normalized, "match": entry.match,
                  "province_code": entry.province_code, "reason": entry.reason, "category": entry.category},
    }


def alert_json(alert: Any, acknowledged_by: str | None = None) -> dict[str, Any]:
    """An alert (SPEC §11) as `GET /api/alerts` lists it; `acknowledged_by` is the username."""
    shown = {name: getattr(alert, name) for name in ALERT_FIELDS}
    shown.update({
        "detail": alert.detail or {},
        "created_at": _iso(alert.created_at),
        "acknowledged_by": acknowledged_by,
        "acknowledged_at": _iso(alert.acknowledged_at),
        "resolved_at": _iso(alert.resolved_at),
        "repeat_count": alert.repeat_count or 1,
        "last_at": _iso(alert.last_at or alert.created_at),
    })
    return shown


def alert_event(alert: Any, record: dict[str, Any] | None) -> dict[str, Any]:
    """The `alert` live event of a trigger other than a blacklist hit (those keep `blacklist_alert`):
    the alert and the record's JSON, for the pop-up card of every open page."""
    return {**alert_json(alert), "record": record}


def camera_status(camera_id: str, **state: Any) -> dict[str, Any]:
    """The `camera_status` event: a camera's id and what changed (`online`, `health`, `last_seen`)."""
    return {"camera_id": camera_id,
            **{key: _iso(value) if isinstance(value, datetime) else value for key, value in state.items()}}


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def _finite(metadata: dict) -> dict:
    """The metadata with NaN and infinities as null: they are not JSON, and a read stored before the
    pipeline refused them must not make every listing unreadable."""
    return {key: None if isinstance(value, float) and not math.isfinite(value) else value
            for key, value in metadata.items()}
