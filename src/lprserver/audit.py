"""The audit trail: who did what, when, from where. Callers commit."""

from typing import Any

from sqlalchemy.orm import Session

from .models import AuditEntry, User


def audit(session: Session, action: str, user: User | None = None, username: str | None = None,
          target: str | None = None, detail: dict[str, Any] | None = None,
          ip: str | None = None) -> AuditEntry:
    """Add one audit entry, e.g. audit(session, "login.failed", username="somchai", ip=...)."""
    entry = AuditEntry(
        action=action,
        user_id=user.id if user is not None else None,
        username=user.username if user is not None else username,
        target=target,
        detail=detail,
        ip=ip,
    )
    session.add(entry)
    return entry
