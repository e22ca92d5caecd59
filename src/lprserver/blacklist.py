"""Blacklist services: matching reads and managing entries. Callers commit."""

from datetime import datetime

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from .models import BlacklistEntry
from .plates import normalize_plate


def match_blacklist(session: Session, plate_normalized: str, now: datetime) -> list[BlacklistEntry]:
    """Return the active, unexpired entries whose normalised plate equals the read's."""
    query = select(BlacklistEntry).where(
        BlacklistEntry.plate_normalized == plate_normalized,
        BlacklistEntry.active.is_(True),
        or_(BlacklistEntry.expires_at.is_(None), BlacklistEntry.expires_at > now),
    )
    return list(session.scalars(query))


def add_entry(
    session: Session,
    license_plate_text: str,
    reason: str | None = None,
    category: str = "other",
    added_by: str | None = None,
    expires_at: datetime | None = None,
) -> BlacklistEntry:
    """Add a blacklist entry; the plate is kept as typed and normalised."""
    entry = BlacklistEntry(
        license_plate_text=license_plate_text,
        plate_normalized=normalize_plate(license_plate_text),
        reason=reason,
        category=category,
        added_by=added_by,
        expires_at=expires_at,
    )
    session.add(entry)
    session.flush()
    return entry
