"""The words live.js puts on every signed-in page (SPEC §13): translated here, passed in the page as
JSON (base.html `#live-text`), since the scripts build no sentences of their own. Placeholders are
`{name}`, filled by `LPR.text(key, fallback, values)`."""

from flask_babel import gettext as _

from .labels import CATEGORY_LABELS


def live_text() -> dict[str, str]:
    return {
        **{f"category_{code}": str(label) for code, label in CATEGORY_LABELS.items()},
        "known_plate": _("Known plate"),
        "plate_history": _("All reads of {plate}"),
        "not_on_list": _("NOT ON LIST"),
        "overstay": _("OVERSTAY"),
        "camera_offline": _("CAMERA OFFLINE"),
        "camera_back": _("CAMERA BACK"),
        "minutes": _("{m} min"),
        "hours": _("{h} h"),
        "hours_minutes": _("{h} h {m} min"),
        "not_on_list_of": _("not on list: {group}"),
        "overstay_for": _("overstay: {stay}"),
        "overstay_max": _("overstay: {stay} (max {max})"),
        "silent": _("{camera} · silent"),
        "silent_since": _("Silent since {time}"),
        "cameras": _("Cameras"),
        "visits": _("Visits"),
        "open_record": _("Open record"),
        "lookalike": _("look-alike of {plate}"),
        "fuzzy": _("one edit from {plate}"),
        "pattern": _("pattern {plate}"),
        "normalized": _("same plate, written differently: {plate}"),
        "other_match": _("{kind} · entry {plate}"),
        "resolved": _("✔ resolved {time}"),
        "retry": _("Retry"),
        "pending": _("pending"),
        "live": _("live"),
        "reconnecting": _("reconnecting…"),
        "offline": _("offline"),
    }
