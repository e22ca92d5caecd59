"""One JSON shape for every API failure: {"error": {"code", "message"}}."""

from flask import jsonify
from werkzeug.exceptions import HTTPException

from . import bp


def error_response(status: int, code: str, message: str, field: str | None = None, **headers):
    """Return the API's error answer."""
    body = {"error": {"code": code, "message": message}}
    if field is not None:
        body["error"]["field"] = field
    response = jsonify(body)
    response.status_code = status
    response.headers.update(headers)
    return response


@bp.errorhandler(HTTPException)
def http_error(exc: HTTPException):
    code = (exc.name or "error").lower().replace(" ", "_")
    return error_response(exc.code or 500, code, exc.description or exc.name)
