"""The blacklist in memory: which active entries a read matches, without scanning the list
(docs/thai-plates.md "Blacklist match modes").

`Hotlist` indexes the entries: a dict by normalised plate (`exact`), a dict by look-alike key
(`lookalike` and `fuzzy`), the deletion neighbourhoods of the look-alike keys for fuzzy's one edit
(a key and its one-character deletions; two keys one edit apart share one), and the patterns grouped
by the literal text they start with, else end with, else contain. A read then costs a few dict
look-ups, whatever the size of the list.

`HotlistCache` keeps one process's index current: every batch looks up the entries added since the
newest one it has (one primary-key range, usually one row), and at most once a second it compares the
table's count, largest id and latest `updated_at` with its own to see edits and deletions; then it
rebuilds. A batch with hits also checks that the entries hit are unchanged (see match_reads). Every
process that matches reads (the daemon's store workers, the web app's POST /api/records) has its own.
"""

import threading
import time
from dataclasses import dataclass
from datetime import datetime
from re import Pattern

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from .models import BlacklistEntry
from .plates import (
    FUZZY_MIN_LENGTH,
    PATTERN_WILDCARDS,
    lookalike_key,
    match_type,
    pattern_prefix,
    pattern_regex,
    within_one_edit,
)

FULL_CHECK_SECONDS = 1.0  # edits and deletions reach matching within this (additions at the next batch)
# New entries a batch takes into the index one by one; more at once (an import) and it is rebuilt. The LIMIT
# also keeps the look-up on the primary key when the table has no statistics yet (a scan: 3.7 ms at 100,000).
CATCH_UP_ROWS = 1000


@dataclass(frozen=True, slots=True)
class HotEntry:
    """What matching and the alert need of an entry (the alert takes it as it takes a BlacklistEntry)."""

    id: int
    license_plate_text: str
    plate_normalized: str  # a pattern keeps its wildcards
    match: str
    province_code: str | None
    expires_at: datetime | None
    reason: str | None
    category: str
    updated_at: datetime | None = None  # as the index read it: a hit is confirmed against the table


@dataclass(frozen=True, slots=True)
class Hit:
    entry: HotEntry
    match_type: str  # exact, normalized, lookalike, fuzzy or pattern: the closest that explains the hit


class _HotPattern:
    """A pattern entry, compiled when indexed (16 µs each): no read waits for a compile."""

    __slots__ = ("entry", "_regex")

    def __init__(self, entry: HotEntry):
        self.entry = entry
        self._regex: Pattern[str] = pattern_regex(entry.plate_normalized)

    def matches(self, plate: str) -> bool:
        return self._regex.fullmatch(plate) is not None


class Hotlist:
    """An index of blacklist entries; `match` answers one read."""

    def __init__(self, entries=()):
        self._exact: dict[str, list[HotEntry]] = {}
        self._lookalike: dict[str, list[HotEntry]] = {}
        self._one_edit: dict[str, list[tuple[HotEntry, str]]] = {}  # key or a deletion -> (entry, its key)
        self._prefixed: dict[str, list[_HotPattern]] = {}
        self._suffixed: dict[str, list[_HotPattern]] = {}
        self._inner: dict[str, list[_HotPattern]] = {}  # by the first two characters of a literal run
        self._anywhere: list[_HotPattern] = []  # no literal run of two: tried on every read (rare)
        self._prefix_lengths: list[int] = []
        self._suffix_lengths: list[int] = []
        self.size = 0
        for entry in entries:
            self.add(entry)

    def add(self, entry: HotEntry) -> None:
        self.size += 1
        plate = entry.plate_normalized
        if entry.match == "pattern":
            self._add_pattern(_HotPattern(entry))
        elif entry.match == "exact":
            self._exact.setdefault(plate, []).append(entry)
        else:  # lookalike, fuzzy
            key = lookalike_key(plate)
            self._lookalike.setdefault(key, []).append(entry)
            if entry.match == "fuzzy" and len(key) >= FUZZY_MIN_LENGTH:
                for variant in {key, *_deletions(key)}:
                    self._one_edit.setdefault(variant, []).append((entry, key))

    def _add_pattern(self, pattern: _HotPattern) -> None:
        text = pattern.entry.plate_normalized
        prefix = pattern_prefix(text)
        suffix = _pattern_suffix(text)
        if prefix:
            _grouped(self._prefixed, self._prefix_lengths, prefix, pattern)
        elif suffix:
            _grouped(self._suffixed, self._suffix_lengths, suffix, pattern)
        else:
            runs = [run for run in _literal_runs(text) if len(run) >= 2]
            if runs:
                self._inner.setdefault(max(runs, key=len)[:2], []).append(pattern)
            else:
                self._anywhere.append(pattern)

    def match(self, plate: str, plate_text: str, province_code: str | None, now: datetime) -> list[Hit]:
        """The active entries a read matches: its normalised plate (without the province), its text as
        sent and its province code (None when unknown), at `now`. In entry id order."""
        found: dict[int, Hit] = {}

        def take(entry: HotEntry, kind: str) -> None:
            if entry.id in found:
                return
            if entry.expires_at is not None and entry.expires_at <= now:
                return
            if entry.province_code and province_code and entry.province_code != province_code:
                return
            if entry.plate_normalized == plate:
                kind = match_type(entry.license_plate_text, plate_text)
            found[entry.id] = Hit(entry, kind)

        for entry in self._exact.get(plate, ()):
            take(entry, "exact")
        key = lookalike_key(plate)
        for entry in self._lookalike.get(key, ()):
            take(entry, "lookalike")
        if self._one_edit and len(key) >= FUZZY_MIN_LENGTH:
            for variant in {key, *_deletions(key)}:
                for entry, entry_key in self._one_edit.get(variant, ()):
                    if entry.id not in found and within_one_edit(entry_key, key):
                        take(entry, "fuzzy")
        for pattern in self._pattern_candidates(plate):
            if pattern.entry.id not in found and pattern.matches(plate):
                take(pattern.entry, "pattern")
        return [found[i] for i in sorted(found)]

    def _pattern_candidates(self, plate: str):
        for length in self._prefix_lengths:
            if length > len(plate):
                break
            yield from self._prefixed.get(plate[:length], ())
        for length in self._suffix_lengths:
            if length > len(plate):
                break
            yield from self._suffixed.get(plate[-length:], ())
        if self._inner:
            for pair in {plate[i:i + 2] for i in range(len(plate) - 1)}:
                yield from self._inner.get(pair, ())
        yield from self._anywhere


def _deletions(key: str) -> list[str]:
    return [key[:i] + key[i + 1:] for i in range(len(key))]


def _pattern_suffix(pattern: str) -> str:
    """The literal characters a pattern ends with, after its last wildcard."""
    for i in range(len(pattern) - 1, -1, -1):
        if pattern[i] in PATTERN_WILDCARDS:
            return pattern[i + 1:]
    return pattern


def _literal_runs(pattern: str) -> list[str]:
    runs, run = [], ""
    for ch in pattern:
        if ch in PATTERN_WILDCARDS:
            runs.append(run)
            run = ""
        else:
            run += ch
    return [r for r in (*runs, run) if r]


def _grouped(groups: dict[str, list[_HotPattern]], lengths: list[int], literal: str,
             pattern: _HotPattern) -> None:
    groups.setdefault(literal, []).append(pattern)
    if len(literal) not in lengths:
        lengths.append(len(literal))
        lengths.sort()


# --- keeping a process's index current --------------------------------------------------------------

_COLUMNS = (BlacklistEntry.id, BlacklistEntry.updated_at, BlacklistEntry.active,
            BlacklistEntry.license_plate_text, BlacklistEntry.plate_normalized, BlacklistEntry.match,
            BlacklistEntry.province_code, BlacklistEntry.expires_at, BlacklistEntry.reason,
            BlacklistEntry.category)

Fingerprint = tuple[int, int | None, datetime | None]  # count, largest id, latest updated_at


class HotlistCache:
    """One process's Hotlist of one database, brought up to date before a batch is matched."""

    def __init__(self, clock=time.monotonic, full_check_seconds: float = FULL_CHECK_SECONDS):
        self.clock = clock
        self.full_check_seconds = full_check_seconds
        self.index: Hotlist | None = None
        self.fingerprint: Fingerprint | None = None
        self.anchor: tuple[int, datetime] | None = None  # the newest row seen: (id, updated_at)
        self.checked_at = float("-inf")
        self.builds = 0
        self._lock = threading.Lock()

    def current(self, session: Session, now: datetime) -> Hotlist:
        """The index as the database has it now (additions) or at most a second ago (edits, deletions)."""
        if not self._lock.acquire(blocking=self.index is None):
            return self.index  # another thread is refreshing it: this batch matches the one in use
        try:
            if self.index is None:
                self._rebuild(session, now)
            elif self.clock() - self.checked_at >= self.full_check_seconds:
                self.checked_at = self.clock()
                if table_fingerprint(session) != self.fingerprint:
                    self._rebuild(session, now)
                else:
                    self._catch_up(session, now)
            else:
                self._catch_up(session, now)
            return self.index
        finally:
            self._lock.release()

    def rebuild(self, session: Session, now: datetime) -> Hotlist:
        """Read the whole table again now."""
        with self._lock:
            self._rebuild(session, now)
            return self.index

    def invalidate(self) -> None:
        """Compare the fingerprint before the next batch (a detection named an entry deleted meanwhile)."""
        self.checked_at = float("-inf")

    def _rebuild(self, session: Session, now: datetime) -> None:
        rows = session.execute(select(*_COLUMNS).order_by(BlacklistEntry.id)).all()
        self.index = Hotlist(_entry(row) for row in rows if _useful(row, now))
        stamps = [row.updated_at for row in rows if row.updated_at is not None]
        self.fingerprint = (len(rows), rows[-1].id if rows else None, max(stamps) if stamps else None)
        self.anchor = (rows[-1].id, rows[-1].updated_at) if rows else None
        self.checked_at = self.clock()
        self.builds += 1

    def _catch_up(self, session: Session, now: datetime) -> None:
        """Add the rows after the newest one the index has; rebuild if that one changed or went."""
        query = select(*_COLUMNS).order_by(BlacklistEntry.id).limit(CATCH_UP_ROWS + 1)
        if self.anchor is not None:
            query = query.where(BlacklistEntry.id >= self.anchor[0])
        rows = session.execute(query).all()
        if len(rows) > CATCH_UP_ROWS:
            self._rebuild(session, now)
            return
        if self.anchor is not None:
            if not rows or (rows[0].id, rows[0].updated_at) != self.anchor:
                self._rebuild(session, now)
                return
            rows = rows[1:]
        if not rows:
            return
        for row in rows:
            if _useful(row, now):
                self.index.add(_entry(row))
        count, _, latest = self.fingerprint
        stamps = [stamp for stamp in (latest, *(row.updated_at for row in rows)) if stamp is not None]
        self.fingerprint = (count + len(rows), rows[-1].id, max(stamps) if stamps else None)
        self.anchor = (rows[-1].id, rows[-1].updated_at)


def table_fingerprint(session: Session) -> Fingerprint:
    count, largest, latest = session.execute(select(
        func.count(), func.max(BlacklistEntry.id), func.max(BlacklistEntry.updated_at))).one()
    return count, largest, latest


def _useful(row, now: datetime) -> bool:
    """Whether a row can match a read now or later: active, not expired (expiry is checked again per read)."""
    return row.active and (row.expires_at is None or row.expires_at > now)


def _entry(row) -> HotEntry:
    return HotEntry(row.id, row.license_plate_text, row.plate_normalized, row.match, row.province_code,
                    row.expires_at, row.reason, row.category, row.updated_at)


def _confirmed(session: Session, found: list[list[Hit]]) -> bool:
    """Whether the entries hit are in the table as the index has them (one primary-key look-up)."""
    stamps = {hit.entry.id: hit.entry.updated_at for hits in found for hit in hits}
    rows = session.execute(select(BlacklistEntry.id, BlacklistEntry.updated_at)
                           .where(BlacklistEntry.id.in_(sorted(stamps)))).all()
    return dict(rows) == stamps


_caches: dict[str, HotlistCache] = {}
_caches_lock = threading.Lock()


def cache_for(session: Session) -> HotlistCache:
    """The process's HotlistCache of the session's database."""
    key = str(session.get_bind().url)
    with _caches_lock:
        cache = _caches.get(key)
        if cache is None:
            cache = _caches[key] = HotlistCache()
        return cache


def current_hotlist(session: Session, now: datetime) -> Hotlist:
    """The process's index of the session's database, brought up to date (see HotlistCache)."""
    return cache_for(session).current(session, now)


Read = tuple[str, str, str | None]  # the normalised plate, the text as sent, the province code


def match_reads(session: Session, reads: list[Read], now: datetime) -> list[list[Hit]]:
    """Each read's hits, with the process's index. A batch with hits checks that their entries are in the
    table as the index has them, and is matched again with a rebuilt index if not: a change to an entry
    that would raise an alert, or its deletion, counts at once; one that makes an entry match more reads
    within FULL_CHECK_SECONDS."""
    cache = cache_for(session)
    index = cache.current(session, now)
    found = [index.match(plate, text, province, now) for plate, text, province in reads]
    if any(found) and not _confirmed(session, found):
        index = cache.rebuild(session, now)
        found = [index.match(plate, text, province, now) for plate, text, province in reads]
    return found
