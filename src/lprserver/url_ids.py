"""Ids in URLs: a record's (`<id:record_id>`), a camera's (`<camera:camera_id>`). Anything that is
not one is a 404 before any query: a huge number, a NUL, a path."""

from werkzeug.routing import BaseConverter, IntegerConverter, PathConverter

from .cameras import CAMERA_ID_REGEX

MAX_ROW_ID = 2**63 - 1


def row_id(text: str) -> int:
    """A row id from a query argument (`?before=`): ValueError unless 0 to MAX_ROW_ID (for `type=`)."""
    number = int(text)
    if not 0 <= number <= MAX_ROW_ID:
        raise ValueError("not a row id")
    return number


class RowId(IntegerConverter):
    """A row id in a URL: 0 to 2**63 - 1 (SQLite's and PostgreSQL's widest integer).

    At most 19 digits in the pattern itself: a longer number then matches no rule, and is a 404 for
    every method. (Werkzeug answers 405 when a rule of another method matched the pattern and this
    method's rule refused the value: `GET /api/records/<20 digits>` did, beside `PATCH`.)"""

    regex = r"\d{1,19}"

    def __init__(self, url_map, *args, **kwargs):
        kwargs.setdefault("max", MAX_ROW_ID)
        super().__init__(url_map, *args, **kwargs)


class CameraIdConverter(BaseConverter):
    """A camera id in a URL (README "Sending reads")."""

    regex = CAMERA_ID_REGEX


class PlateConverter(PathConverter):
    """A plate in a URL (`<plate:plate>`): any text, slashes too, as `GET /api/plates/<plate>` takes it,
    but not one ending in a sub-resource of a plate (`/export.zip`, `/erase`). So `DELETE
    /api/plates/<plate>` does not also claim `/api/plates/<plate>/export.zip`, and an OPTIONS there
    lists only the methods that path has."""

    regex = r"[^/].*?(?<!/export\.zip)(?<!/erase)"
