"""Thai and English (SPEC §13): which language a request is shown in, and the catalogues.

The language follows the signed-in user's choice (kept on the account), then a stranger's choice
(kept in the session, e.g. on the sign-in page), then the browser's Accept-Language, then
DEFAULT_LANGUAGE. The catalogues are src/lprserver/translations/<lang>/LC_MESSAGES/messages.po,
compiled to .mo by setup.sh (README "Translations")."""

from pathlib import Path

from flask import current_app, has_request_context, request, session
from flask_login import current_user

LANGUAGES = ("th", "en")
LANGUAGE_NAMES = {"th": "ไทย", "en": "English"}
TRANSLATIONS = Path(__file__).parent / "translations"
SESSION_KEY = "language"


def select_language() -> str:
    """The language of this request (Flask-Babel's locale selector)."""
    if has_request_context():
        user = current_user
        if user and user.is_authenticated and getattr(user, "language", None) in LANGUAGES:
            return user.language
        if session.get(SESSION_KEY) in LANGUAGES:
            return session[SESSION_KEY]
        chosen = request.accept_languages.best_match(LANGUAGES)
        if chosen:
            return chosen
    return current_app.config["DEFAULT_LANGUAGE"]


def compile_catalogues(root: Path = TRANSLATIONS, force: bool = False) -> list[Path]:
    """Compile each messages.po to messages.mo where the .mo is missing or older (setup.sh, the tests).

    Fuzzy entries are left out, as `pybabel compile` does. Returns the files written."""
    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po

    written = []
    for po_path in sorted(root.glob("*/LC_MESSAGES/messages.po")):
        mo_path = po_path.with_suffix(".mo")
        if not force and mo_path.exists() and mo_path.stat().st_mtime >= po_path.stat().st_mtime:
            continue
        with po_path.open("rb") as handle:
            catalog = read_po(handle, locale=po_path.parent.parent.name)
        with mo_path.open("wb") as handle:
            write_mo(handle, catalog, use_fuzzy=False)
        written.append(mo_path)
    return written


if __name__ == "__main__":  # python -m lprserver.i18n: compile the catalogues (setup.sh)
    for path in compile_catalogues(force=True):
        print(f"compiled {path}")
