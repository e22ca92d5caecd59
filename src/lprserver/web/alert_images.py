"""A read's image behind a signed link that expires, for LINE's image message (SPEC §11 "Delivery";
alert_images.py signs the links). No sign-in: LINE's servers fetch it; the signature is the permission.

`GET /alert-images/<record_id>/full` is the read's image, `/preview` its thumbnail, each with
`?expires=<unix seconds>&sig=<signature>`: 403 when the signature is wrong or the link has expired, 404
when the record or its image is gone (retention may have removed it since).

Sites (SPEC §15): a signed-in user whose sites do not include the read's camera gets the same 404 as for
a missing record; LINE's fetch (no sign-in) has only the signature. Each fetch of the full image is in the
audit log (`record.image`, with the address; the user when one is signed in); previews are not.
"""

import logging

from flask import abort, current_app, request
from flask_login import current_user

from ..alert_images import verify
from ..api.records import audit_image_view, send_stored, send_thumbnail  # one place serves stored images
from ..extensions import db
from ..models import utcnow
from ..records import visible_record
from ..sites import EVERYWHERE, current_scope
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
    scope = current_scope() if current_user.is_authenticated else EVERYWHERE
    record = visible_record(db.session, record_id, scope)
    if record is None:
        abort(404)
    log.info("event=alert_image_fetched record_id=%s kind=%s", record_id, kind)
    if kind == "full":
        audit_image_view(record, request.remote_addr)
    return send_stored(record.image_path) if kind == "full" else send_thumbnail(record)
