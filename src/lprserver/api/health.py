"""GET /health: liveness of the web app and its database, without sign-in and without data."""

from flask import jsonify
from sqlalchemy import text

from ..extensions import db


def health():
    try:
        db.session.execute(text("SELECT 1"))
    except Exception:  # any database failure means "not healthy", nothing more is said
        db.session.rollback()
        return jsonify({"status": "error", "database": "unavailable"}), 503
    return jsonify({"status": "ok", "database": "ok"})
