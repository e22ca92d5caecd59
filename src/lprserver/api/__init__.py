"""The REST API blueprint (docs/api.md), documented by flask-smorest at /api/openapi.json."""

from flask import Flask, abort, g, request, send_from_directory
from flask_login import current_user
from flask_smorest import Blueprint
from swagger_ui_bundle import swagger_ui_path

from ..cameras import CAMERA_ID_PATTERN
from ..extensions import csrf
from ..url_ids import CameraIdConverter, PlateConverter, RowId
from .errors import ApiParser, LprApi, row_id_schema


class ApiBlueprint(Blueprint):
    ARGUMENTS_PARSER = ApiParser()


bp = ApiBlueprint("api", __name__, url_prefix="/api", description="The LPR Server REST API")
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
SWAGGER_ASSETS = ("swagger-ui.css", "swagger-ui-bundle.js", "swagger-ui-standalone-preset.js")

API_DESCRIPTION = """\
REST API of the LPR Server. Authenticate with the browser session (plus the
`X-CSRFToken` header on writes) or with a personal API token:
`Authorization: Bearer lpr_...`. Tokens are made at `/account/tokens` or with
`POST /api/tokens`. Every failure answers `{"error": {"code", "message"}}`.
"""

OPENAPI_SETTINGS = {
    "API_TITLE": "LPR Server API",
    "API_VERSION": "1.0",
    "OPENAPI_VERSION": "3.0.3",
    "OPENAPI_URL_PREFIX": "/api",
    "OPENAPI_JSON_PATH": "openapi.json",
    "OPENAPI_SWAGGER_UI_PATH": "docs",
    "OPENAPI_SWAGGER_UI_URL": "/api/docs/assets/",
}


def init_app(app: Flask) -> LprApi:
    """Bind the API, its OpenAPI document and its docs page to the app."""
    for key, value in OPENAPI_SETTINGS.items():
        app.config.setdefault(key, value)
    csrf.exempt(bp)  # session writes are checked in check_access; Bearer calls need no CSRF token
    api = LprApi(app, spec_kwargs={"info": {"description": API_DESCRIPTION}})
    api.register_converter(RowId, row_id_schema)
    api.register_converter(CameraIdConverter,
                           lambda _converter: {"type": "string", "pattern": CAMERA_ID_PATTERN})
    api.register_converter(PlateConverter, lambda _converter: {"type": "string"})
    api.spec.components.security_scheme("bearerAuth", {"type": "http", "scheme": "bearer"})
    api.spec.components.security_scheme("sessionCookie",
                                        {"type": "apiKey", "in": "cookie", "name": "session"})
    api.spec.options["security"] = [{"bearerAuth": []}, {"sessionCookie": []}]
    api.register_blueprint(bp)
    app.add_url_rule("/api/docs/assets/<path:filename>", "api_docs_assets", _swagger_asset)
    return api


def _swagger_asset(filename: str):
    if filename not in SWAGGER_ASSETS:
        abort(404)
    return send_from_directory(str(swagger_ui_path), filename, max_age=86400)


@bp.before_request
def check_access():
    """Refuse writes with a read-only token, and check CSRF on writes made with the session cookie."""
    if request.method in SAFE_METHODS:
        return
    if not current_user.is_authenticated:  # also loads a Bearer token's user into g.api_token
        return
    token = g.get("api_token")
    if token is not None:
        if token.scope != "read-write":
            abort(403, "this API token is read-only")
    else:
        csrf.protect()


from . import (  # noqa: E402,F401  # noqa: E402,F401 (SPEC §10: corrections and the review queue)
    alert_rules,
    alerts,
    analytics,
    audit,
    blacklist,
    cameras,
    corrections,
    ingest,
    known,
    plates,
    privacy,
    records,
    reports,
    review,
    statistics,
    tokens,
    visits,
    webhooks,
)
