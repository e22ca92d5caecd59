"""Known plates (SPEC §10): the allow list of residents, staff and fleet, and its groups.

`KnownList` answers, for a read, which current known plates name it; `KnownCache` keeps one process's
list current: every batch compares the tables' count, largest id and latest `updated_at` with the ones
it was built from and rebuilds the list when they differ (one small aggregate; the list is small next
to the records: 10,000 plates rebuild in a few tens of milliseconds), and once more RECHECK_SECONDS
after a change, for an edit stamped before and committed after the one it saw. The ingest pipeline
uses it to name known plates on the live feed and to raise `not_on_list` at gates; pages and the API
look known plates up with `known_for`.
"""

import threading
import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from .models import KnownGroup, KnownPlate

RECHECK_SECONDS = 3.0


@dataclass(frozen=True, slots=True)
class KnownEntry:
    id: int
    plate: str
    plate_normalized: str
    province_code: str | None
    name: str | None
    group: str
    valid_from: datetime | None
    valid_until: datetime | None

    def current(self, now: datetime) -> bool:
        return (self.valid_from is None or self.valid_from <= now) and \
            (self.valid_until is None or now < self.valid_until)

    def names(self, province_code: str | None) -> bool:
        """Whether this entry names a read of its plate in `province_code` (an entry without a
        province names the plate in any province; a read whose province is unknown matches it too)."""
        return self.province_code is None or province_code is None or self.province_code == province_code

    def shown(self) -> dict[str, Any]:
        """How a record's JSON shows the known plate it is (wire.record_json)."""
        return {"id": self.id, "name": self.name, "group": self.group}


def entry_of(row: KnownPlate) -> KnownEntry:
    return KnownEntry(row.id, row.plate, row.plate_normalized, row.province_code, row.name, row.group_name,
                      row.valid_from, row.valid_until)


class KnownList:
    def __init__(self, entries=(), groups: dict[str, int | None] | None = None):
        self.by_plate: dict[str, list[KnownEntry]] = defaultdict(list)
        for entry in entries:
            self.by_plate[entry.plate_normalized].append(entry)
        self.max_stay: dict[str, int | None] = dict(groups or {})  # every group, with its max_stay_minutes

    def lookup(self, plate: str, province_code: str | None, now: datetime) -> list[KnownEntry]:
        """The current entries naming a read of `plate` (normalised) in `province_code`."""
        return [e for e in self.by_plate.get(plate, ()) if e.current(now) and e.names(province_code)]

    def first(self, plate: str, province_code: str | None, now: datetime) -> KnownEntry | None:
        found = self.lookup(plate, province_code, now)
        return found[0] if found else None

    def in_group(self, plate: str, province_code: str | None, group: str, now: datetime) -> KnownEntry | None:
        return next((e for e in self.lookup(plate, province_code, now) if e.group == group), None)

    def stay_group(self, plate: str, province_code: str | None, now: datetime) -> str | None:
        """The group a visit of this plate is held to: the first current one with a max stay, else the
        first current one."""
        found = self.lookup(plate, province_code, now)
        timed = [e for e in found if self.max_stay.get(e.group)]
        return (timed or found)[0].group if found else None


Fingerprint = tuple


class KnownCache:
    """One process's KnownList of one database, checked against the tables at every batch."""

    def __init__(self, clock=time.monotonic):
        self.clock = clock
        self.known = KnownList()
        self.fingerprint: Fingerprint | None = None
        self.recheck_at: float | None = None
        self.lock = threading.Lock()

    def current(self, session: Session) -> KnownList:
        with self.lock:
            fingerprint = table_fingerprint(session)
            due = self.recheck_at is not None and self.clock() >= self.recheck_at
            if fingerprint != self.fingerprint or due:
                if fingerprint != self.fingerprint and self.fingerprint is not None:
                    self.recheck_at = self.clock() + RECHECK_SECONDS
                elif due:
                    self.recheck_at = None
                self.known = load(session)
                self.fingerprint = fingerprint
            return self.known

    def invalidate(self) -> None:
        with self.lock:
            self.fingerprint = None


def table_fingerprint(session: Session) -> Fingerprint:
    """Count, largest id and latest stamp of the plates, count and latest stamp of the groups: one query."""
    def one(*columns, table):
        return select(*columns).select_from(table).scalar_subquery()
    return tuple(session.execute(select(
        one(func.count(), table=KnownPlate), one(func.max(KnownPlate.id), table=KnownPlate),
        one(func.max(KnownPlate.updated_at), table=KnownPlate), one(func.count(), table=KnownGroup),
        one(func.max(KnownGroup.updated_at), table=KnownGroup))).one())


def load(session: Session) -> KnownList:
    entries = [entry_of(row) for row in session.scalars(select(KnownPlate).order_by(KnownPlate.id))]
    groups = dict(session.execute(select(KnownGroup.name, KnownGroup.max_stay_minutes)).all())
    return KnownList(entries, groups)


_caches: dict[str, KnownCache] = {}
_caches_lock = threading.Lock()


def cache_for(session: Session) -> KnownCache:
    """The process's KnownCache of the session's database."""
    key = str(session.get_bind().url)
    with _caches_lock:
        cache = _caches.get(key)
        if cache is None:
            cache = _caches[key] = KnownCache()
        return cache


def current_known(session: Session) -> KnownList:
    return cache_for(session).current(session)


Read = tuple[str, str | None]  # a normalised plate and its province code


def known_for(session: Session, reads: list[Read], now: datetime) -> dict[Read, KnownEntry]:
    """The first current known plate naming each (normalised plate, province code) read, for pages and
    the API (one query for a page of records)."""
    plates = sorted({plate for plate, _ in reads})
    if not plates:
        return {}
    rows = session.scalars(select(KnownPlate).where(KnownPlate.plate_normalized.in_(plates))
                           .order_by(KnownPlate.id)).all()
    known = KnownList([entry_of(row) for row in rows])
    found = {}
    for plate, province in reads:
        entry = known.first(plate, province, now)
        if entry is not None:
            found[(plate, province)] = entry
    return found
