"""An alert as people read it (SPEC §11 "Delivery"): a subject, a short text (LINE, the e-mail's plain
part) and an HTML e-mail, in Thai or English (SPEC §13).

Each message says what happened, the plate and province, the camera's name and id, its location, the
time in TIMEZONE, the blacklist entry's reason and category, and a link to the record when PUBLIC_URL is
set. The wording is English here (marked with N_ for `pybabel extract`) and translated from the package's
gettext catalogues: the sender renders outside any request (in the ingest daemon's sender threads, with no
app context), in the site's DEFAULT_LANGUAGE rather than a reader's browser's, so the catalogue is loaded
with babel itself, once per language.
"""

from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from babel.support import NullTranslations, Translations
from markupsafe import Markup

from ..times import show_local
from . import AlertMessage

# LINE's text message holds at most 5,000 characters (UTF-16 code units); an entry's reason is cut well
# before that so the whole message always fits.
LINE_TEXT_MAX = 5000
FIELD_MAX = 500



def N_(message: str) -> str:
    """Marks a msgid for `pybabel extract` (one of its default keywords); translated when rendered."""
    return message


# English msgids; `{name}` placeholders are filled after translation.
WORDS: dict[str, str] = {
    "blacklist": N_("Blacklisted plate seen"),
    "not_on_list": N_("Plate not on the allowed list"),
    "overstay": N_("Vehicle stayed too long"),
    "camera_offline": N_("Camera offline"),
    "alert": N_("Alert"),
    "escalation": N_("Not acknowledged after {minutes} min"),
    "repeat": N_("read {count} times"),
    "plate": N_("Plate"),
    "province": N_("Province"),
    "camera": N_("Camera"),
    "location": N_("Location"),
    "time": N_("Time"),
    "reason": N_("Reason"),
    "category": N_("Category"),
    "group": N_("Group"),
    "entered": N_("Entered"),
    "stayed": N_("Stayed"),
    "allowed": N_("Allowed"),
    "last_heard": N_("Last heard"),
    "silent_for": N_("silent for over {minutes} min"),
    "silence": N_("Silence"),
    "link": N_("Open the record"),
    "image": N_("The camera's image"),
    "footer": N_("LPR Server · alert {alert_id}"),
    "hours_minutes": N_("{hours} h {minutes} min"),
    "minutes": N_("{minutes} min"),
}
CATEGORIES: dict[str, str] = {"stolen": N_("stolen"), "wanted": N_("wanted"), "vip": N_("VIP"),
                              "watch": N_("watch list"), "other": N_("other")}


@lru_cache(maxsize=8)
def translations(language: str) -> NullTranslations:
    """The compiled catalogue of `language` (English, or a language without a catalogue: the msgids)."""
    from ..i18n import TRANSLATIONS

    if language == "en":
        return NullTranslations()
    return Translations.load(str(TRANSLATIONS), [language])


def words(language: str) -> dict[str, str]:
    """The message's words in `language`."""
    gettext = translations(language).gettext
    return {key: gettext(message) for key, message in WORDS.items()}


def categories(language: str) -> dict[str, str]:
    """The blacklist's categories in `language`."""
    gettext = translations(language).gettext
    return {key: gettext(message) for key, message in CATEGORIES.items()}


# The header band's colour per trigger: red for a hit, amber for a gate, grey for a silent camera.
COLOURS = {"blacklist": "#b91c1c", "not_on_list": "#b45309", "overstay": "#b45309",
           "camera_offline": "#4b5563"}
MARKS = {"blacklist": "🚨", "camera_offline": "📷"}
FONTS = "'Sarabun','Noto Sans Thai','Leelawadee UI','Tahoma','Garuda','Loma',Arial,sans-serif"


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str


def render(message: AlertMessage, language: str = "th", timezone: str = "Asia/Bangkok",
           now: datetime | None = None, era: str = "ce") -> Rendered:
    """The subject, text and HTML of one alert in `language` ("th" or "en"), times in `timezone` with
    years in `era` (DATE_ERA, SPEC §12).

    `now` (UTC) is when it is sent: an escalation says how long the alert has waited."""
    shown = words(language)
    headline = _headline(message, shown, now or datetime.now(UTC))
    rows = _rows(message, shown, categories(language), ZoneInfo(timezone), era)
    return Rendered(subject=_subject(message, shown, headline), text=_text(message, shown, headline, rows),
                    html=_html(message, shown, headline, rows, language))


def image_cid(message: AlertMessage) -> str:
    """The Content-ID the HTML uses for the read's image (without the angle brackets)."""
    return f"alert-{message.alert_id}-image@lprserver"


def local_time(moment: datetime, zone: ZoneInfo, era: str = "ce") -> str:
    """`2026-12-03 14:05:09 +07` (`2569-12-03 …` in the Buddhist era): the time in the site's zone,
    with its offset in hours (and minutes)."""
    local = moment.astimezone(zone)
    offset = int(local.utcoffset().total_seconds() // 60)
    sign, offset = ("+" if offset >= 0 else "-"), abs(offset)
    zone_text = f"{sign}{offset // 60:02d}" + (f":{offset % 60:02d}" if offset % 60 else "")
    return f"{show_local(local, zone, era)} {zone_text}"


def _headline(message: AlertMessage, words: dict[str, str], now: datetime) -> dict[str, str]:
    title = words.get(message.trigger, words["alert"])
    notes = []
    if message.escalation:
        waited = max(0, int((now - message.at).total_seconds() // 60))
        notes.append(words["escalation"].format(minutes=waited))
    return {"title": title, "escalation": notes[0] if notes else "",
            "repeat": words["repeat"].format(count=message.repeat_count) if message.repeat_count > 1 else ""}


def _cut(value: Any) -> str:
    text = " ".join(str(value).split())
    return text if len(text) <= FIELD_MAX else text[:FIELD_MAX - 1] + "…"


def _camera(message: AlertMessage) -> str:
    if message.camera_name and message.camera_name != message.camera_id:
        return f"{message.camera_name} ({message.camera_id})"
    return message.camera_id or ""


def _rows(message: AlertMessage, words: dict[str, str], category_words: dict[str, str],
          zone: ZoneInfo, era: str = "ce") -> list[tuple[str, str, str]]:
    """The (key, label, value) lines of the message, in order, the empty ones left out."""
    detail = message.detail or {}
    rows: list[tuple[str, Any]] = [
        ("plate", message.plate), ("province", message.province), ("camera", _camera(message)),
        ("location", message.location), ("time", local_time(message.at, zone, era))]
    if message.trigger == "blacklist":
        rows += [("reason", message.reason),
                 ("category", category_words.get(message.category or "", message.category))]
    elif message.trigger in ("not_on_list", "overstay"):
        rows.append(("group", detail.get("group")))
    if message.trigger == "overstay":
        rows += [("entered", _time_text(detail.get("entered_at"), zone, era)),
                 ("stayed", _duration(detail.get("stay_seconds"), words)),
                 ("allowed", _duration(_number(detail.get("max_stay_minutes"), 60), words))]
    if message.trigger == "camera_offline":
        rows += [("last_heard", _time_text(detail.get("last_seen"), zone, era)),
                 ("silence", words["silent_for"].format(minutes=_minutes(detail.get("minutes"))))]
    return [(key, words[key], _cut(value)) for key, value in rows if value not in (None, "")]


def _number(value: Any, scale: float = 1) -> float | None:
    try:
        return float(value) * scale
    except (TypeError, ValueError):
        return None


def _minutes(value: Any) -> str:
    number = _number(value)
    return "?" if number is None else f"{number:g}"


def _duration(seconds: Any, words: dict[str, str]) -> str | None:
    seconds = _number(seconds)
    if seconds is None:
        return None
    minutes = int(seconds // 60)
    if minutes < 60:
        return words["minutes"].format(minutes=minutes)
    return words["hours_minutes"].format(hours=minutes // 60, minutes=minutes % 60)


def _time_text(iso: Any, zone: ZoneInfo, era: str = "ce") -> str | None:
    try:
        moment = datetime.fromisoformat(str(iso))
    except ValueError:
        return None
    return local_time(moment if moment.tzinfo else moment.replace(tzinfo=UTC), zone, era)


def _subject(message: AlertMessage, words: dict[str, str], headline: dict[str, str]) -> str:
    what = " ".join(p for p in (message.plate, message.province) if p)
    where = _camera(message)
    subject = " · ".join(p for p in (what, where) if p)
    prefix = f"[{headline['escalation']}] " if headline["escalation"] else ""
    return _cut(f"{prefix}{headline['title']}: {subject}" if subject else prefix + headline["title"])


def _text(message: AlertMessage, words: dict[str, str], headline: dict[str, str],
          rows: list[tuple[str, str, str]]) -> str:
    mark = MARKS.get(message.trigger, "⚠️")
    lines = [f"{mark} {headline['escalation']}" if headline["escalation"] else None,
             f"{mark} {headline['title']}" if not headline["escalation"] else headline["title"]]
    lines += [f"{label}: {value}" for _, label, value in rows]
    lines += [f"({headline['repeat']})" if headline["repeat"] else None,
              f"{words['link']}: {message.link}" if message.link else None]
    text = "\n".join(line for line in lines if line)
    return _fit_utf16(text, LINE_TEXT_MAX)


def _fit_utf16(text: str, limit: int) -> str:
    """Cut `text` to at most `limit` UTF-16 code units (how LINE counts)."""
    if len(text.encode("utf-16-le")) // 2 <= limit:
        return text
    while len(text.encode("utf-16-le")) // 2 > limit - 1:
        text = text[:-1]
    return text + "…"


# Inline styles only (SPEC §11): mail clients drop <style> blocks and never load stylesheets.
ROW = Markup('<tr><th scope="row" style="text-align:left;vertical-align:top;font-weight:normal;color:#6b7280;'
             'padding:6px 16px 6px 0;width:150px;">{}</th>'
             '<td style="vertical-align:top;padding:6px 0;color:#111827;">{}</td></tr>')
ESCALATION = Markup('<div style="font-size:14px;font-weight:normal;margin-bottom:4px;">{}</div>')
REPEAT = Markup('<span style="display:inline-block;margin-left:10px;padding:2px 10px;border-radius:12px;'
                'background:#fee2e2;color:#991b1b;font-size:14px;vertical-align:middle;">{}</span>')
PLATE = Markup('<tr><td style="padding:20px 24px 4px;">'
               '<div style="display:inline-block;border:3px solid #111827;border-radius:8px;padding:4px 18px;'
               'text-align:center;background:#ffffff;vertical-align:middle;">'
               '<div style="font-size:30px;font-weight:bold;letter-spacing:1px;line-height:1.4;">{}</div>'
               '<div style="font-size:15px;line-height:1.5;color:#374151;">{}</div></div>{}</td></tr>')
IMAGE = Markup('<tr><td style="padding:12px 24px 4px;"><img src="cid:{}" alt="{}" width="552" '
               'style="display:block;width:100%;max-width:552px;height:auto;border-radius:6px;'
               'border:1px solid #e5e7eb;"></td></tr>')
LINK = Markup('<tr><td style="padding:16px 24px 8px;"><a href="{0}" style="display:inline-block;'
              'background:#1d4ed8;color:#ffffff;text-decoration:none;font-weight:bold;padding:10px 20px;'
              'border-radius:6px;">{1}</a><div style="font-size:12px;color:#6b7280;margin-top:8px;'
              'word-break:break-all;">{0}</div></td></tr>')
PAGE = Markup(
    '<!DOCTYPE html><html lang="{lang}"><head><meta charset="utf-8">'
    '<meta name="viewport" content="width=device-width,initial-scale=1"><title>{title}</title></head>'
    '<body style="margin:0;padding:0;background:#f3f4f6;">'
    '<table role="presentation" width="100%" cellpadding="0" cellspacing="0" style="background:#f3f4f6;">'
    '<tr><td align="center" style="padding:24px 12px;">'
    '<table role="presentation" width="600" cellpadding="0" cellspacing="0" style="width:100%;'
    'max-width:600px;background:#ffffff;border:1px solid #e5e7eb;border-radius:8px;'
    'border-collapse:separate;font-family:{fonts};font-size:16px;line-height:1.6;color:#111827;">'
    '<tr><td style="background:{colour};color:#ffffff;padding:16px 24px;border-radius:7px 7px 0 0;'
    'font-size:20px;font-weight:bold;line-height:1.5;">{escalation}{headline}</td></tr>'
    '{plate}'
    '<tr><td style="padding:12px 24px 4px;"><table role="presentation" cellpadding="0" cellspacing="0" '
    'style="width:100%;border-collapse:collapse;font-size:16px;line-height:1.6;">{rows}</table></td></tr>'
    '{image}{link}'
    '<tr><td style="padding:16px 24px;border-top:1px solid #e5e7eb;color:#6b7280;font-size:12px;">'
    '{footer}</td></tr></table></td></tr></table></body></html>')


def _html(message: AlertMessage, words: dict[str, str], headline: dict[str, str],
          rows: list[tuple[str, str, str]], language: str) -> str:
    """The e-mail's HTML part; every value is escaped by Markup.format."""
    shown_above = ("plate", "province") if message.plate else ()  # in the plate's box
    repeat = REPEAT.format(headline["repeat"]) if headline["repeat"] else ""
    return str(PAGE.format(
        lang=language, title=_subject(message, words, headline), fonts=Markup(FONTS),
        colour=COLOURS.get(message.trigger, "#4b5563"),
        escalation=ESCALATION.format(headline["escalation"]) if headline["escalation"] else "",
        headline=headline["title"],
        plate=PLATE.format(message.plate, message.province or "", repeat) if message.plate else "",
        rows=Markup("").join(ROW.format(label, value) for key, label, value in rows
                             if key not in shown_above),
        image=IMAGE.format(image_cid(message), words["image"]) if message.image else "",
        link=LINK.format(message.link, words["link"]) if message.link else "",
        footer=words["footer"].format(alert_id=message.alert_id)))
