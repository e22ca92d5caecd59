"""A read's image behind a signed link that expires, for LINE's image message (SPEC §11 "Delivery";
alert_images.py signs the links). No sign-in: LINE's servers fetch it; the signature is the permission.

`GET /alert-images/<record_id>/full` is the read's image, `/preview` its thumbnail, each with
`?expires=<unix seconds>&sig=<signature>`: 403 when the signature is wrong or the link has expired, 404
when the record or its image is gone (retention may have removed it since).
"""

import logging

from flask import abort, current_app, request

from ..alert_images import verify
from ..api.records import send_stored  # one place serves stored images (X-Accel-Redirect or the file)
from ..extensions import db
from ..models import Record, utcnow
from . import bp

log = logging.getLogger("lprserver.alerts")


@bp.get("/alert-images/<id:record_id>/full", defaults={"kind": "full"})
@bp.get("/alert-images/<id:record_id>/preview", defaults={"kind": "preview"})
def alert_image(record_id: int, kind: str):
    """The image (or thumbnail) a signed alert link points to."""
    expires = request.args.get("expires", "")
    sig = request.args.get("sig", "")
    if not (expires.isascii() and expires.isdigit() and len(expires) <= 12 and 0 < len(sig) <= 128) or \
            not verify(current_app.config["SECRET_KEY"], record_id, kind, int(expires), sig, utcnow()):
        abort(403, "this image link is not valid or has expired")
    record = db.get_or_404(Record, record_id)
    log.info("event=alert_image_fetched record_id=%s kind=%s", record_id, kind)
    return send_stored(record.image_path if kind == "full" else record.thumbnail_path)
