"""Server-side records of signed-in browser sessions, so that signing out really ends one. Callers commit."""

from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from .models import User, WebSession
from .tokens import generate_token, hash_token

TOUCH_RESOLUTION = timedelta(minutes=1)


def start_session(session: Session, user: User, now: datetime, ip: str | None,
                  user_agent: str | None) -> str:
    """Record a new session for `user` and return the token its cookie carries."""
    token = generate_token("ses")
    session.add(WebSession(user_id=user.id, token_hash=hash_token(token), created_at=now,
                           last_seen_at=now, ip=ip, user_agent=(user_agent or "")[:255] or None))
    return token


def check_session(session: Session, user_id: int, token: str | None, now: datetime,
                  idle: timedelta) -> bool:
    """Tell whether `token` is a live session of `user_id`, noting that it was used now."""
    if not token:
        return False
    row = session.scalar(select(WebSession).where(WebSession.token_hash == hash_token(token)))
    if row is None or row.user_id != user_id or row.ended_at is not None:
        return False
    if now - row.last_seen_at > idle:
        row.ended_at = now
        session.commit()
        return False
    if now - row.last_seen_at > TOUCH_RESOLUTION:
        row.last_seen_at = now
        session.commit()
    return True


def end_session(session: Session, token: str | None, now: datetime) -> None:
    """End one session (sign-out)."""
    if token:
        session.execute(update(WebSession).where(WebSession.token_hash == hash_token(token),
                                                 WebSession.ended_at.is_(None)).values(ended_at=now))


def end_user_sessions(session: Session, user_id: int, now: datetime, keep: str | None = None) -> None:
    """End every session of a user (deactivated, new password, new role), but the one whose token
    is `keep` (the user who changed their own password stays signed in where they did it)."""
    query = update(WebSession).where(WebSession.user_id == user_id, WebSession.ended_at.is_(None))
    if keep:
        query = query.where(WebSession.token_hash != hash_token(keep))
    session.execute(query.values(ended_at=now))
