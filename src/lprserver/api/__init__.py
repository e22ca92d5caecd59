"""The REST API blueprint (SPEC §6)."""

from flask import Blueprint

bp = Blueprint("api", __name__, url_prefix="/api")

from . import errors, records  # noqa: E402,F401  (routes register themselves on bp)
