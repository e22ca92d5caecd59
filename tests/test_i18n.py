"""Thai and English (SPEC §13): the catalogues cover every string, the language is chosen as the SPEC
says, every page is walked in both languages, one language at a time, and the bar fits one line."""

import re
from datetime import timedelta
from html.parser import HTMLParser
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

import config
from lprserver import create_app
from lprserver.extensions import db
from lprserver.i18n import TRANSLATIONS
from lprserver.models import BlacklistEntry, Camera, KnownGroup, KnownPlate, Record, User, utcnow
from lprserver.plates import PROVINCES

from .processes import ROOT
from .webserver import PageClient, sign_in

KEYWORDS = {"_": None, "gettext": None, "ngettext": (1, 2), "lazy_gettext": None, "_l": None,
            "pgettext": ((1, "c"), 2), "N_": None}
PLACEHOLDER = re.compile(r"%\((\w+)\)[sd]|\{(\w+)\}")
SHOTS = ROOT / "test-artifacts" / "i18n"


def extracted() -> dict[str, tuple[str, int]]:
    """Every msgid in the templates and the package, where it was found (pybabel extract -F babel.cfg)."""
    found = {}
    mapping = [("src/lprserver/**.py", "python"), ("templates/**.html", "jinja2")]
    for filename, lineno, message, _comments, _context in extract_from_dir(
            str(ROOT), method_map=mapping, keywords=KEYWORDS):
        for msgid in (message if isinstance(message, tuple) else (message,)):
            if msgid:
                found.setdefault(msgid, (filename, lineno))
    return found


def catalogue(language: str):
    with (TRANSLATIONS / language / "LC_MESSAGES" / "messages.po").open("rb") as handle:
        return read_po(handle, locale=language)


def test_every_string_in_the_templates_and_the_code_has_a_thai_translation():
    thai = catalogue("th")
    translated = {}
    for message in thai:
        if not message.id:
            continue
        ids = message.id if isinstance(message.id, tuple) else (message.id,)
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        ok = all(strings) and "fuzzy" not in message.flags
        for msgid in ids:
            translated[msgid] = ok and strings[0]
    missing = [f"{where[0]}:{where[1]}: {msgid!r}" for msgid, where in sorted(extracted().items())
               if not translated.get(msgid)]
    assert not missing, ("strings without a Thai translation (README \"Translations\": extract, update, "
                         "translate):\n" + "\n".join(missing))


def test_translations_keep_their_placeholders_and_english_needs_none():
    wrong = []
    for message in catalogue("th"):
        if not message.id or not message.string:
            continue
        ids = message.id if isinstance(message.id, tuple) else (message.id,)
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        want = {m.group(0) for m in PLACEHOLDER.finditer(ids[-1])}
        for text in strings:
            if {m.group(0) for m in PLACEHOLDER.finditer(text)} != want:
                wrong.append(f"{ids[0]!r} -> {text!r}")
    assert not wrong, "\n".join(wrong)
    english = catalogue("en")
    assert english.locale.language == "en" and len(english) > 100  # msgids are the English text


# --- which language a request gets -------------------------------------------------------------------


@pytest.fixture
def thai_app(base_env, clean):
    """The app with SPEC §13's own default, DEFAULT_LANGUAGE=th (the other tests run in English)."""
    app = create_app(config.TestingConfig({**base_env, "DEFAULT_LANGUAGE": "th"}))
    with app.app_context():
        yield app
        db.session.remove()
        db.engine.dispose()


def html_lang(answer) -> str:
    return re.search(r'<html lang="(\w+)">', answer.get_data(as_text=True)).group(1)


def test_the_language_follows_the_account_then_the_browser_then_default_language(thai_app, users):
    stranger = PageClient(thai_app)
    assert html_lang(stranger.get("/login")) == "th"
    assert "เข้าสู่ระบบ" in stranger.get("/login").get_data(as_text=True)
    english = stranger.get("/login", headers={"Accept-Language": "en-GB,en;q=0.9"})
    assert html_lang(english) == "en" and "Sign in" in english.get_data(as_text=True)
    assert html_lang(stranger.get("/login", headers={"Accept-Language": "de, fr;q=0.5"})) == "th"

    viewer = PageClient(thai_app)
    assert viewer.login("viewer").status_code == 302
    assert html_lang(viewer.get("/", headers={"Accept-Language": "en"})) == "en"
    answer = viewer.post("/account/language", data={"language": "th", "next": "/records?plate=AB",
                                                    "csrf_token": viewer.token("/")})
    assert answer.status_code == 303 and answer.headers["Location"] == "/records?plate=AB"
    # The choice wins over the browser's, and is kept on the account: a new sign-in elsewhere has it.
    assert html_lang(viewer.get("/", headers={"Accept-Language": "en"})) == "th"
    assert db.session.scalar(db.select(User.language).where(User.username == "viewer")) == "th"
    elsewhere = PageClient(thai_app, remote_addr="10.0.0.9")
    elsewhere.login("viewer")
    assert html_lang(elsewhere.get("/", headers={"Accept-Language": "en"})) == "th"
    # Signing out keeps the language for the sign-in page.
    elsewhere.post("/logout", data={"csrf_token": elsewhere.token("/")})
    assert html_lang(elsewhere.get("/login", headers={"Accept-Language": "en"})) == "th"


def test_a_stranger_switches_the_sign_in_page_and_bad_switches_are_refused(thai_app, users):
    stranger = PageClient(thai_app)
    token = stranger.token("/login")
    answer = stranger.post("/account/language", data={"language": "en", "next": "/login", "csrf_token": token})
    assert answer.status_code == 303 and answer.headers["Location"] == "/login"
    assert html_lang(stranger.get("/login")) == "en"
    for bad in ("de", "", "th'", "EN", "x" * 5000):
        refused = stranger.post("/account/language", data={"language": bad, "csrf_token": token})
        assert refused.status_code == 400, bad
    assert stranger.post("/account/language", data={"language": "th"}).status_code == 400  # no CSRF token
    assert html_lang(stranger.get("/login")) == "en"
    for hostile in ("https://evil.example/", "//evil.example/x", "/\\evil.example", "javascript:alert(1)",
                    "/records\r\nSet-Cookie: x=1"):
        answer = stranger.post("/account/language", data={"language": "th", "next": hostile, "csrf_token": token})
        assert answer.status_code == 303 and answer.headers["Location"] == "/", hostile


def test_flash_messages_and_form_errors_are_in_the_users_language(thai_app, users):
    person = PageClient(thai_app)
    answer = person.post("/login", data={"username": "viewer", "password": "wrong-password-here",
                                         "csrf_token": person.token()})
    assert answer.status_code == 401 and "ชื่อผู้ใช้หรือรหัสผ่านไม่ถูกต้อง" in answer.get_data(as_text=True)
    person.login("viewer")
    person.post("/logout", data={"csrf_token": person.token("/")})
    assert "ออกจากระบบแล้ว" in person.get("/login").get_data(as_text=True)


# --- every page in both languages ----------------------------------------------------------------------

PLATE = "AB1234"
DATA = {"GATE-1", "North gate", PLATE, "Staff", "Somchai", "stolen car", "admin", "operator", "viewer",
        # LINE's own name for its token, as its console shows it
        "channel access token"}
# Latin words a Thai page may show: names of things (products, protocols, formats) and units.
LATIN_OK = {
    "LPR", "Server", "API", "REST", "CSV", "PDF", "Excel", "XLSX", "LINE", "MQTT", "SMTP", "ID", "URL",
    "JPEG", "HTTP", "HTTPS", "OpenAPI", "Bearer", "Authorization", "token", "English", "Leaflet",
    "OpenStreetMap", "OSM", "Asia", "Bangkok", "UTC", "IP", "km", "webhook", "Webhook", "JSON", "VIP",
    "PDPA", "zip", "TIMEZONE", "DATE_ERA", "CAMERA_OFFLINE_MINUTES", "SMTP_URL", "SMTP_FROM", "LINE_CHANNEL_TOKEN",
    "MAP_TILE_URL", "PUBLIC_URL", "ALERT_REPEAT_SECONDS", "Chart", "GPS", "AM", "PM", "OK",
    "mqtt", "ABC", "Enter", "Esc", "Tab",  # a channel's id, a Latin plate's example, keys to press
}
# Thai words (three letters or more): plates' letter pairs (กข 1234, ข/ช) are examples, not words.
THAI = re.compile(r"[\u0E00-\u0E7F]{3,}")
# Latin words, leaving out parts of addresses, e-mail addresses and ids (smtp://user@host, email:x).
LATIN_WORD = re.compile(r"(?<![\w/.@:-])[A-Za-z][A-Za-z_]{2,}(?![\w/.@:-])")
ATTRIBUTES = ("title", "placeholder", "aria-label", "alt", "data-confirm")
PROVINCE_NAMES = {name for province in PROVINCES for name in (province.name_th, province.name_en)}


class VisibleText(HTMLParser):
    """The words a person sees or hears on a page: text outside scripts and styles, and the
    attributes shown as tooltips, placeholders or read aloud. Text inside <code> and <option> of the
    province lists is data."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.skip = 0
        self.texts: list[str] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag in ("script", "style", "code", "pre") or "data-i18n-skip" in attrs:
            self.skip += 1
        for name in ATTRIBUTES:
            if attrs.get(name):
                self.texts.append(attrs[name])
        if tag == "input" and attrs.get("type") in ("submit", "button") and attrs.get("value"):
            self.texts.append(attrs["value"])

    def handle_endtag(self, tag):
        if tag in ("script", "style", "code", "pre") and self.skip:
            self.skip -= 1

    def handle_data(self, data):
        if not self.skip and data.strip():
            self.texts.append(data.strip())


def visible_texts(html: str) -> list[str]:
    parser = VisibleText()
    parser.feed(html)
    return parser.texts


def untranslated(html: str, language: str) -> list[str]:
    """The texts on a page that are in the other language (data and names aside)."""
    wrong = []
    for text in visible_texts(html):
        rest = text
        for value in sorted(DATA | PROVINCE_NAMES, key=len, reverse=True):
            rest = rest.replace(value, " ")
        if language == "th":
            words = [w for w in LATIN_WORD.findall(rest) if w not in LATIN_OK]
            if words:
                wrong.append(text)
        elif THAI.search(rest.replace("ไทย", " ")):
            wrong.append(text)
    return wrong


def seed() -> dict[str, str]:
    now = utcnow()
    db.session.add(Camera(id="GATE-1", name="North gate", location="North gate", role="entry",
                          latitude=13.75, longitude=100.5, last_seen=now))
    db.session.flush()
    record = Record(camera_id="GATE-1", plate_number=PLATE, plate_normalized=PLATE, confidence=0.97,
                    captured_at=now - timedelta(minutes=5), received_at=now - timedelta(minutes=5))
    entry = BlacklistEntry(license_plate_text=PLATE, plate_normalized=PLATE, reason="stolen car",
                           category="stolen", added_by="admin")
    db.session.add_all([record, entry, KnownGroup(name="Staff", max_stay_minutes=600)])
    db.session.flush()
    known = KnownPlate(plate=PLATE, plate_normalized=PLATE, name="Somchai", group_name="Staff")
    db.session.add(known)
    db.session.commit()
    return {"record_id": str(record.id), "entry_id": str(entry.id), "plate_id": str(known.id), "plate": PLATE,
            "camera_id": "GATE-1"}


def page_paths(app, values: dict[str, str]) -> list[str]:
    """Every page (a GET route answering HTML for people), with the seeded rows' ids filled in."""
    not_pages = {"favicon", "monitoring.health", "monitoring.metrics", "web.missed", "web.alert_image",
                 "web.blacklist_export", "web.known_export", "web.export", "web.report_download"}
    paths = []
    for rule in app.url_map.iter_rules():
        if ("GET" not in rule.methods or rule.endpoint in not_pages or rule.endpoint == "static"
                or rule.rule.startswith(("/api", "/internal", "/static"))
                or rule.endpoint.split(".")[0] not in ("web", "auth", "account")):
            continue
        missing = [name for name in rule.arguments if name not in values]
        assert not missing, f"{rule.rule}: give test_i18n.py's seed a value for {missing}"
        path = rule.rule
        for name in rule.arguments:
            path = re.sub(rf"<(?:\w+:)?{name}>", values[name], path)
        if not path.endswith(".csv") and not path.endswith((".xlsx", ".pdf")):
            paths.append(path)
    return sorted(paths)


@pytest.mark.parametrize("language", ["th", "en"])
def test_every_page_shows_one_language_only(app, users, language):
    values = seed()
    paths = page_paths(app, values)
    assert {"/", "/dashboard", "/records", "/blacklist", "/cameras", "/map", "/alerts", "/login"} <= set(paths)
    admin = PageClient(app)
    admin.login("admin")
    admin.post("/account/language", data={"language": language, "csrf_token": admin.token("/")})
    problems = {}
    for path in paths + [f"/plates/{PLATE}", f"/map?plate={PLATE}"]:
        client = PageClient(app) if path == "/login" else admin
        if path == "/login":
            client.post("/account/language", data={"language": language, "csrf_token": client.token("/login")})
        answer = client.get(path)
        assert answer.status_code == 200, (path, answer.status_code)
        html = answer.get_data(as_text=True)
        assert f'<html lang="{language}">' in html, path
        wrong = untranslated(html, language)
        if wrong:
            problems[path] = wrong
    assert not problems, "\n".join(f"{path}: {texts}" for path, texts in problems.items())


# --- in Chromium: the bar on one line, and the phone's menu ----------------------------------------------


@pytest.mark.parametrize("language", ["th", "en"])
def test_the_bar_fits_one_line_at_1366_and_collapses_on_a_phone(webapp, app, users, browser, language):
    seed()
    SHOTS.mkdir(parents=True, exist_ok=True)
    for width, height in ((1366, 768), (390, 844)):
        context = browser.new_context(viewport={"width": width, "height": height},
                                      locale="th-TH" if language == "th" else "en-GB")
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda error, seen=errors: seen.append(str(error)))
        try:
            sign_in(page, webapp, "admin")
            page.wait_for_selector("#live-state.online", state="attached", timeout=10_000)
            assert page.locator("html").get_attribute("lang") == language
            if width > 1000:
                middles = page.evaluate("""() => [...document.querySelectorAll(
                    '#mainnav > ul > li, #live-state, #language-switch, #nav-account')]
                    .map((el) => { const b = el.getBoundingClientRect(); return Math.round(b.top + b.height / 2); })""")
                assert max(middles) - min(middles) <= 4, middles
                assert page.evaluate("() => document.documentElement.scrollWidth") <= width
            else:
                assert not page.locator("#mainnav").is_visible()
                page.click(".navbar-toggler")
                page.locator("#mainnav.show").wait_for(timeout=5_000)
                assert page.locator("#language-switch").is_visible()
                assert page.evaluate("() => document.documentElement.scrollWidth") <= width
            page.screenshot(path=str(SHOTS / f"overview_{language}_{width}.png"), full_page=True)
            assert not errors, errors
        finally:
            context.close()


def test_the_switch_in_the_bar_changes_the_language_and_keeps_the_page(webapp, app, users, browser_page):
    seed()
    page = browser_page
    sign_in(page, webapp, "admin")
    page.goto(f"{webapp.url}/records?plate={PLATE}")
    page.click('#language-switch button[value="th"]')
    page.wait_for_url(re.compile(r"/records\?plate=AB1234$"))
    assert page.locator("html").get_attribute("lang") == "th"
    assert page.locator("#mainnav").get_by_text("บัญชีดำ").count() >= 1
    page.click('#language-switch button[value="en"]')
    page.wait_for_url(re.compile(r"/records\?plate=AB1234$"))
    assert page.locator("html").get_attribute("lang") == "en"


def test_catalogue_files_sit_where_the_spec_says():
    for language in ("th", "en"):
        assert Path(TRANSLATIONS / language / "LC_MESSAGES" / "messages.po").is_file()
    assert TRANSLATIONS == ROOT / "src" / "lprserver" / "translations"


def test_the_language_switch_walked_as_every_kind_of_caller(app, users, make_token):
    """Anyone may choose a language (CSRF still holds); a token is no browser and changes nothing."""
    for role in ("viewer", "operator", "admin"):
        person = PageClient(app)
        person.login(role)
        answer = person.post("/account/language", data={"language": "th", "csrf_token": person.token("/")})
        assert answer.status_code == 303, role
        assert db.session.scalar(db.select(User.language).where(User.username == role)) == "th"
    for scope in ("read", "read-write"):
        headers = {"Authorization": f"Bearer {make_token('viewer', scope)}"}
        answer = PageClient(app).post("/account/language", data={"language": "en"}, headers=headers)
        assert answer.status_code == 400, scope  # no CSRF token: refused, as every form post
    db.session.rollback()
    assert db.session.scalar(db.select(User.language).where(User.username == "viewer")) == "th"
