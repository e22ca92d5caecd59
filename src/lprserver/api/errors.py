"""One JSON shape for every API failure: {"error": {"code", "message"[, "field"]}}."""

import marshmallow as ma
from flask import jsonify, request
from flask_smorest import Api
from webargs.flaskparser import FlaskParser
from werkzeug.exceptions import HTTPException

from ..url_ids import MAX_ROW_ID


class ErrorBody(ma.Schema):
    code = ma.fields.String(required=True, metadata={"example": "not_found"})
    message = ma.fields.String(required=True)
    field = ma.fields.String(allow_none=True,
                             metadata={"description": "the request field at fault (validation errors)"})


class ErrorSchema(ma.Schema):
    """Every API failure, whatever its status."""

    error = ma.fields.Nested(ErrorBody, required=True)


class ApiParser(FlaskParser):
    """Request validation answers 400, like the ingest doors do for bad input; text that no column
    can keep (a NUL, a lone surrogate) or numbers JSON cannot carry are refused before the schema."""

    DEFAULT_VALIDATION_STATUS = 400

    def load_json(self, req, schema):
        data = super().load_json(req, schema)
        if isinstance(data, dict):
            _plain_values(data)
        return data

    def load_querystring(self, req, schema):
        _plain_values({key: value for key, value in req.args.items(multi=True)})
        return super().load_querystring(req, schema)


def _plain_values(data: dict) -> None:
    from ..ingest.errors import IngestError  # the ingest doors' own check, shared
    from ..ingest.validation import check_values

    try:
        check_values(data)
    except IngestError as exc:
        raise ma.ValidationError({exc.field or "_schema": [exc.message]}) from None


def row_id_schema(_converter) -> dict:
    return {"type": "integer", "minimum": 0, "maximum": MAX_ROW_ID}


class LprApi(Api):
    """flask-smorest's Api with our error shape, applied to /api/ paths only."""

    ERROR_SCHEMA = ErrorSchema

    def _register_error_handlers(self):
        # Unhandled exceptions reach this as InternalServerError (Flask logs them first).
        self._app.register_error_handler(HTTPException, handle_http_exception)


def error_response(status: int, code: str, message: str, field: str | None = None, **headers):
    """Return the API's error answer."""
    body = {"error": {"code": code, "message": message}}
    if field is not None:
        body["error"]["field"] = field
    response = jsonify(body)
    response.status_code = status
    response.headers.update(headers)
    return response


def is_api_path() -> bool:
    return request.path == "/api" or request.path.startswith("/api/")


def handle_http_exception(exc: HTTPException):
    """Answer HTTP errors under /api/ as JSON; leave the pages' errors to Flask (or the web app)."""
    if not is_api_path():
        return exc
    data = getattr(exc, "data", None) or {}
    if "messages" in data:
        field, message = first_validation_error(data["messages"])
        return error_response(exc.code, "validation_error", message, field)
    headers = dict(data.get("headers") or {})
    if exc.code == 429:
        headers.setdefault("Retry-After", str(_retry_after(exc)))
    if exc.code == 405 and exc.valid_methods:
        headers["Allow"] = ", ".join(exc.valid_methods)
    if exc.code == 500:
        return error_response(500, "internal_server_error", "the server failed to answer; this is logged")
    code = (exc.name or "error").lower().replace(" ", "_").replace("'", "")
    message = data.get("message") or exc.description or exc.name
    return error_response(exc.code or 500, code, message, **headers)


def first_validation_error(messages: dict) -> tuple[str | None, str]:
    """Return (field, message) of the first error in webargs' {location: {field: [msg]}}."""
    path: list[str] = []
    node = messages
    while isinstance(node, dict) and node:
        key, node = next(iter(node.items()))
        path.append(str(key))
    if path and path[0] in ("json", "query", "form", "headers", "view_args", "files"):
        path = path[1:]
    text = node[0] if isinstance(node, list) and node else str(node)
    field = ".".join(p for p in path if p != "_schema") or None
    return field, f"{field}: {text}" if field else str(text)


def _retry_after(exc: HTTPException) -> int:
    limit = getattr(exc, "limit", None)
    try:
        return max(1, int(limit.limit.get_expiry()))
    except Exception:  # an older or newer Flask-Limiter: a conservative default
        return 60

