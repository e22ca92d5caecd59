"""The operators' pages (README "The pages"): one module per page area, all on one blueprint."""

import functools
from datetime import date, datetime

from flask import Blueprint, Flask, current_app, request, send_from_directory
from flask_babel import get_locale
from flask_babel import lazy_gettext as _l
from flask_login import current_user

from ..i18n import LANGUAGE_NAMES
from ..times import ERA_OFFSETS, show_local
from .live_text import live_text

bp = Blueprint("web", __name__)

ROLE_LABELS = {"admin": _l("Admin"), "operator": _l("Operator"), "viewer": _l("Viewer")}


def init_app(app: Flask) -> None:
    """Register the pages, the sign-in pages and the live channel on the app."""
    from . import (  # noqa: F401  # noqa: F401 (corrections and the review queue, SPEC §10)
        alert_images,
        alerts,
        analytics,
        audit,
        blacklist,
        cameras,
        corrections,
        known,
        live,
        map,
        overview,
        plates,
        privacy,
        records,
        reports,
        retention,
        review,
        users,
        visits,
    )
    from .auth import bp as auth_bp

    app.register_blueprint(auth_bp)
    app.register_blueprint(bp)
    app.jinja_env.filters["localtime"] = localtime
    app.jinja_env.filters["showdate"] = showdate
    app.context_processor(template_globals)
    app.after_request(security_headers)
    app.add_url_rule("/favicon.ico", "favicon", favicon)
    live.init_app(app)


def favicon():
    """Browsers ask for /favicon.ico whatever the page says (and the API docs page has none of ours)."""
    return send_from_directory(current_app.static_folder, "favicon.ico", max_age=86400)


def localtime(moment: datetime | None, fmt: str = "%Y-%m-%d %H:%M:%S") -> str:
    """Show an aware UTC time in the site's TIMEZONE, its year in DATE_ERA (SPEC §12)."""
    if moment is None:
        return "—"
    return show_local(moment, current_app.config["TIMEZONE"], current_app.config["DATE_ERA"], fmt)


def showdate(day: date | None) -> str:
    """Show a calendar day (already in TIMEZONE), its year in DATE_ERA."""
    if day is None:
        return "—"
    return f"{day.year + ERA_OFFSETS.get(current_app.config['DATE_ERA'], 0):04d}-{day:%m-%d}"


def can_edit() -> bool:
    return current_user.is_authenticated and current_user.role in ("admin", "operator")


def template_globals() -> dict:
    return {"can_edit": can_edit(), "role_labels": ROLE_LABELS, "timezone": current_app.config["TIMEZONE"],
            "language": str(get_locale() or current_app.config["DEFAULT_LANGUAGE"]),
            "language_names": LANGUAGE_NAMES, "live_text": live_text,
            "endpoints": current_app.view_functions}


def client_ip() -> str | None:
    """The address the request came from (nginx's X-Real-IP is trusted only via ProxyFix, if set up)."""
    return request.remote_addr


# Scripts only from our own files: a plate that smuggles markup past escaping still cannot run. Images
# also from MAP_TILE_URL's server when one is set (SPEC §12 "Map"); nginx passes this header on.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data: blob:{tiles}; connect-src 'self' ws: wss:; font-src 'self'; object-src 'none'; "
    "base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
)


def tile_origin(tile_url: str) -> str | None:
    """The origin a MAP_TILE_URL loads tiles from, as a CSP source (`{s}.` becomes `*.`); None without
    one. config.py has checked the template's host already."""
    if not tile_url:
        return None
    scheme, _, rest = tile_url.partition("://")
    host = rest.split("/", 1)[0]
    return f"{scheme}://{'*.' + host.removeprefix('{s}.') if host.startswith('{s}.') else host}"


@functools.cache
def content_security_policy(tile_url: str) -> str:
    origin = tile_origin(tile_url)
    return CONTENT_SECURITY_POLICY.format(tiles=f" {origin}" if origin else "")


def security_headers(response):
    """Add the browser protections every page gets."""
    if response.mimetype == "text/html":
        policy = content_security_policy(current_app.config.get("MAP_TILE_URL", ""))
        response.headers.setdefault("Content-Security-Policy", policy)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    return response
