"""Webhooks (admins only): the URLs that get blacklist hits (and optionally every read), and their log."""

from flask import request
from flask_login import current_user
from sqlalchemy import func, select

from ..audit import audit
from ..auth import require_every_site, require_role
from ..extensions import db
from ..models import Webhook, WebhookDelivery, utcnow
from ..webhooks import enqueue_test, new_secret
from . import bp
from .schemas import (
    DeliveryPage,
    DeliverySchema,
    NewWebhookSchema,
    PageArgs,
    WebhookIn,
    WebhookList,
    WebhookPatch,
    WebhookSchema,
)


def _admin():
    return current_user._get_current_object()


def _audit(action: str, hook: Webhook, detail: dict | None = None) -> None:
    audit(db.session, action, user=_admin(), target=f"webhook:{hook.id}", detail=detail,
          ip=request.remote_addr)


@bp.get("/webhooks")
@require_role("admin")
@require_every_site
@bp.response(200, WebhookList)
@bp.doc(tags=["webhooks"])
def list_webhooks():
    """List the webhooks (their secrets are not shown again)."""
    return {"webhooks": list(db.session.scalars(select(Webhook).order_by(Webhook.id)))}


@bp.post("/webhooks")
@require_role("admin")
@require_every_site
@bp.arguments(WebhookIn)
@bp.response(201, NewWebhookSchema)
@bp.doc(tags=["webhooks"])
def create_webhook(data: dict):
    """Add a webhook; the answer holds its signing secret, shown this once."""
    hook = Webhook(url=data["url"], events=sorted(set(data["events"])), description=data.get("description"),
                   active=data["active"], secret=new_secret(), created_by=_admin().id, created_at=utcnow())
    db.session.add(hook)
    db.session.flush()
    _audit("webhook.create", hook, {"url": hook.url, "events": hook.events})
    db.session.commit()
    return hook


@bp.get("/webhooks/<id:webhook_id>")
@require_role("admin")
@require_every_site
@bp.response(200, WebhookSchema)
@bp.doc(tags=["webhooks"])
def get_webhook(webhook_id: int):
    """Return one webhook."""
    return db.get_or_404(Webhook, webhook_id)


@bp.patch("/webhooks/<id:webhook_id>")
@require_role("admin")
@require_every_site
@bp.arguments(WebhookPatch)
@bp.response(200, WebhookSchema)
@bp.doc(tags=["webhooks"])
def update_webhook(changes: dict, webhook_id: int):
    """Change a webhook's URL, events, description or active state."""
    hook = db.get_or_404(Webhook, webhook_id)
    if "events" in changes:
        changes["events"] = sorted(set(changes["events"]))
    for name, value in changes.items():
        setattr(hook, name, value)
    _audit("webhook.update", hook, {k: v for k, v in changes.items()})
    db.session.commit()
    return hook


@bp.delete("/webhooks/<id:webhook_id>")
@require_role("admin")
@require_every_site
@bp.response(204)
@bp.doc(tags=["webhooks"])
def delete_webhook(webhook_id: int):
    """Delete a webhook and its delivery log."""
    hook = db.get_or_404(Webhook, webhook_id)
    _audit("webhook.delete", hook, {"url": hook.url})
    db.session.delete(hook)
    db.session.commit()


@bp.post("/webhooks/<id:webhook_id>/test")
@require_role("admin")
@require_every_site
@bp.response(202, DeliverySchema)
@bp.doc(tags=["webhooks"])
def test_webhook(webhook_id: int):
    """Queue a `ping` event for this webhook, to check the receiver and its signature check."""
    hook = db.get_or_404(Webhook, webhook_id)
    delivery = enqueue_test(db.session, hook, utcnow())
    db.session.commit()
    return delivery


@bp.get("/webhooks/<id:webhook_id>/deliveries")
@require_role("admin")
@require_every_site
@bp.arguments(PageArgs, location="query", as_kwargs=True)
@bp.response(200, DeliveryPage)
@bp.doc(tags=["webhooks"])
def list_deliveries(webhook_id: int, page: int, per_page: int):
    """The delivery log of a webhook, newest first: state, attempts, last answer or error."""
    db.get_or_404(Webhook, webhook_id)
    query = select(WebhookDelivery).where(WebhookDelivery.webhook_id == webhook_id)
    total = db.session.scalar(select(func.count()).select_from(query.subquery()))
    rows = db.session.scalars(query.order_by(WebhookDelivery.id.desc()).limit(per_page)
                              .offset((page - 1) * per_page))
    return {"deliveries": list(rows), "page": page, "per_page": per_page, "total": total}
