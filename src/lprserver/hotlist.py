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
takes in the rows changed since and drops the ones gone, without reading the whole table. A batch
with hits also checks that the entries hit are unchanged (see match_reads). Every process that
matches reads (the daemon's store workers, the web app's POST /api/records) has its own.
"""

import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from re import Pattern

from sqlalchemy import func, or_, select
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
# How long an edit may take from its stamp (the flush) to its commit and still be seen (HotlistCache).
RECHECK_SECONDS = 3.0


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
        self._anywhere: dict[str, list[_HotPattern]] = {}  # "": no literal run of two, tried on every read
        self._prefix_lengths: list[int] = []
        self._suffix_lengths: list[int] = []
        self._entries: dict[int, HotEntry] = {}
        for entry in entries:
            self.add(entry)

    @property
    def size(self) -> int:
        return len(self._entries)

    def stamps(self) -> dict[int, datetime | None]:
        """Each indexed entry's `updated_at` as the index read it."""
        return {entry_id: entry.updated_at for entry_id, entry in self._entries.items()}

    def add(self, entry: HotEntry) -> None:
        """Index an entry (in place of the one with its id, if any)."""
        if entry.id in self._entries:
            self.remove(entry.id)
        self._entries[entry.id] = entry
        plate = entry.plate_normalized
        if entry.match == "pattern":
            groups, literal = self._pattern_group(plate)
            groups.setdefault(literal, []).append(_HotPattern(entry))
            # New lists, never sorted in place: a read may be walking the old one in another thread.
            if groups is self._prefixed and len(literal) not in self._prefix_lengths:
                self._prefix_lengths = sorted([*self._prefix_lengths, len(literal)])
            elif groups is self._suffixed and len(literal) not in self._suffix_lengths:
                self._suffix_lengths = sorted([*self._suffix_lengths, len(literal)])
        elif entry.match == "exact":
            self._exact.setdefault(plate, []).append(entry)
        else:  # lookalike, fuzzy
            key = lookalike_key(plate)
            self._lookalike.setdefault(key, []).append(entry)
            if entry.match == "fuzzy" and len(key) >= FUZZY_MIN_LENGTH:
                for variant in {key, *_deletions(key)}:
                    self._one_edit.setdefault(variant, []).append((entry, key))

    def remove(self, entry_id: int) -> None:
        """Take an entry out of the index (nothing if it is not in it). The lists it was in are replaced,
        not changed, so a read being matched meanwhile sees them whole."""
        entry = self._entries.pop(entry_id, None)
        if entry is None:
            return
        plate = entry.plate_normalized
        if entry.match == "pattern":
            groups, literal = self._pattern_group(plate)
            _without(groups, literal, lambda item: item.entry.id == entry_id)
        elif entry.match == "exact":
            _without(self._exact, plate, lambda item: item.id == entry_id)
        else:
            key = lookalike_key(plate)
            _without(self._lookalike, key, lambda item: item.id == entry_id)
            if entry.match == "fuzzy" and len(key) >= FUZZY_MIN_LENGTH:
                for variant in {key, *_deletions(key)}:
                    _without(self._one_edit, variant, lambda item: item[0].id == entry_id)

    def _pattern_group(self, text: str) -> tuple[dict[str, list[_HotPattern]], str]:
        """Where a pattern is kept: by the literal text it starts with, else ends with, else by the first
        two characters of its longest literal run, else with those tried on every read (key "")."""
        prefix = pattern_prefix(text)
        if prefix:
            return self._prefixed, prefix
        suffix = _pattern_suffix(text)
        if suffix:
            return self._suffixed, suffix
        runs = [run for run in _literal_runs(text) if len(run) >= 2]
        if runs:
            return self._inner, max(runs, key=len)[:2]
        return self._anywhere, ""

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
        yield from self._anywhere.get("", ())


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


def _without(groups: dict, key: str, is_it) -> None:
    kept = [item for item in groups.get(key, ()) if not is_it(item)]
    if kept:
        groups[key] = kept
    else:
        groups.pop(key, None)


# --- keeping a process's index current --------------------------------------------------------------

_COLUMNS = (BlacklistEntry.id, BlacklistEntry.updated_at, BlacklistEntry.active,
            BlacklistEntry.license_plate_text, BlacklistEntry.plate_normalized, BlacklistEntry.match,
            BlacklistEntry.province_code, BlacklistEntry.expires_at, BlacklistEntry.reason,
            BlacklistEntry.category)

Fingerprint = tuple[int, int | None, datetime | None]  # count, largest id, latest updated_at


class HotlistCache:
    """One process's Hotlist of one database, brought up to date before a batch is matched.

    Built once from the whole table; after that it follows the table change by change. Each batch takes
    in the rows after the newest one it has (by id). At most once a second it reads the table's
    fingerprint (count, largest id, latest `updated_at`); when that differs it drops the ids that are
    gone and takes in the rows new since, or changed since the latest `updated_at` it had seen (its
    watermark). An edit is stamped before its transaction commits, so one committed just after a check
    may carry a stamp below the watermark that check set: RECHECK_SECONDS later the rows stamped from
    RECHECK_SECONDS before that watermark are read again. Edits must move `updated_at` (the model's
    onupdate does; the processes that write share one clock)."""

    def __init__(self, clock=time.monotonic, full_check_seconds: float = FULL_CHECK_SECONDS):
        self.clock = clock
        self.full_check_seconds = full_check_seconds
        self.index: Hotlist | None = None
        self.known: set[int] = set()  # the ids of every row taken in, those not indexed too
        self.largest: int | None = None  # the largest of them
        self.anchor: tuple[int, datetime] | None = None  # the newest row taken in: (id, updated_at)
        self.watermark: datetime | None = None  # every change stamped up to this is in the index
        self.rechecks: list[tuple[float, datetime]] = []  # (when, rows stamped after this): read again
        self.checked_at = float("-inf")
        self.builds = self.syncs = 0
        self._lock = threading.Lock()

    def current(self, session: Session, now: datetime) -> Hotlist:
        """The index as the database has it now (additions) or at most a second ago (edits, deletions)."""
        if not self._lock.acquire(blocking=self.index is None):
            return self.index  # another thread is bringing it up to date: this batch takes it as it is
        try:
            if self.index is None:
                self._rebuild(session, now)
            elif self.clock() - self.checked_at >= self.full_check_seconds:
                self._sync(session, now)
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

    def sync(self, session: Session, now: datetime) -> Hotlist:
        """Compare with the table now, however long ago it was last compared."""
        with self._lock:
            self._sync(session, now)
            return self.index

    def refresh(self, session: Session, ids: set[int], now: datetime) -> Hotlist:
        """Take these rows in again now (the entries a batch hit, changed or deleted since)."""
        with self._lock:
            rows = session.execute(select(*_COLUMNS).where(BlacklistEntry.id.in_(sorted(ids)))).all()
            for gone in ids - {row.id for row in rows}:
                self.index.remove(gone)
                self.known.discard(gone)
            self._take(rows, now)
            return self.index

    def invalidate(self) -> None:
        """Compare the fingerprint before the next batch (a detection named an entry deleted meanwhile)."""
        self.checked_at = float("-inf")

    def _rebuild(self, session: Session, now: datetime) -> None:
        self.checked_at = self.clock()
        rows = session.execute(select(*_COLUMNS).order_by(BlacklistEntry.id)).all()
        self.index = Hotlist(_entry(row) for row in rows if _useful(row, now))
        self.known = {row.id for row in rows}
        self.largest = rows[-1].id if rows else None
        self.anchor = (rows[-1].id, rows[-1].updated_at) if rows else None
        stamps = [row.updated_at for row in rows if row.updated_at is not None]
        self._set_watermark(max(stamps) if stamps else None)
        self.builds += 1

    def _catch_up(self, session: Session, now: datetime) -> None:
        """Take in the rows after the newest one the index has; compare with the table if that one
        changed or went."""
        query = select(*_COLUMNS).order_by(BlacklistEntry.id).limit(CATCH_UP_ROWS + 1)
        if self.anchor is not None:
            query = query.where(BlacklistEntry.id >= self.anchor[0])
        rows = session.execute(query).all()
        if len(rows) > CATCH_UP_ROWS:
            self._rebuild(session, now)
            return
        if self.anchor is not None:
            if not rows or (rows[0].id, rows[0].updated_at) != self.anchor:
                self._sync(session, now)
                return
            rows = rows[1:]
        if rows:
            self._take(rows, now)
            self.anchor = (rows[-1].id, rows[-1].updated_at)

    def _sync(self, session: Session, now: datetime) -> None:
        """Bring the index level with the table: drop the ids that are gone, take in the rows that are
        new, or stamped after the watermark (or after a due recheck's stamp)."""
        self.checked_at = self.clock()
        count, largest, latest = table_fingerprint(session)
        due = [since for when, since in self.rechecks if when <= self.clock()]
        moved = latest != self.watermark
        if count == len(self.known) and largest == self.largest and not moved and not due:
            return
        new: set[int] = set()
        if count != len(self.known) or largest != self.largest:
            ids = set(session.scalars(select(BlacklistEntry.id)))
            for gone in self.known - ids:
                self.index.remove(gone)
            new, self.known = ids - self.known, self.known & ids
            self.largest = max(ids, default=None)
        wanted = [BlacklistEntry.id.in_(sorted(new))] if new else []
        if moved or due:
            since = [*due, self.watermark] if moved else due
            wanted.append(BlacklistEntry.id.is_not(None) if None in since
                          else BlacklistEntry.updated_at > min(since))
        if len(new) > CATCH_UP_ROWS:
            self._rebuild(session, now)  # a large import: read the table whole
            return
        rows = []
        if wanted:
            rows = session.execute(select(*_COLUMNS).where(or_(*wanted)).order_by(BlacklistEntry.id)
                                   .limit(CATCH_UP_ROWS + 1)).all()
            if len(rows) > CATCH_UP_ROWS:
                if moved or new:
                    self._rebuild(session, now)  # a change of many rows
                    return
                # A recheck after a large import or a rebuild: a rebuild here would schedule the same
                # recheck again, for ever. Compare the stamps and take in only the rows that differ.
                rows = self._differing(session, min(due))
        self._take(rows, now)
        self.rechecks = [(when, since) for when, since in self.rechecks if when > self.clock()]
        newest = session.execute(select(BlacklistEntry.id, BlacklistEntry.updated_at)
                                 .order_by(BlacklistEntry.id.desc()).limit(1)).first()
        self.anchor = tuple(newest) if newest else None
        if moved or new:
            self._set_watermark(latest)  # read first: a change made since is seen at the next check
        self.syncs += 1

    def _differing(self, session: Session, since: datetime | None) -> list:
        """The rows stamped after `since` whose stamp is not the one the index holds."""
        stamps = select(BlacklistEntry.id, BlacklistEntry.updated_at)
        if since is not None:
            stamps = stamps.where(BlacklistEntry.updated_at > since)
        held = self.index.stamps()
        ids = sorted(i for i, stamp in session.execute(stamps) if i not in held or held[i] != stamp)
        rows = []
        for start in range(0, len(ids), CATCH_UP_ROWS):
            rows += session.execute(select(*_COLUMNS).where(
                BlacklistEntry.id.in_(ids[start:start + CATCH_UP_ROWS]))).all()
        return sorted(rows, key=lambda row: row.id)

    def _set_watermark(self, latest: datetime | None) -> None:
        self.watermark = latest
        if latest is not None:
            margin = timedelta(seconds=RECHECK_SECONDS)
            self.rechecks.append((self.clock() + RECHECK_SECONDS, latest - margin))

    def _take(self, rows, now: datetime) -> None:
        for row in rows:
            self.known.add(row.id)
            self.largest = row.id if self.largest is None else max(self.largest, row.id)
            if _useful(row, now):
                self.index.add(_entry(row))
            else:
                self.index.remove(row.id)


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
        index = cache.refresh(session, {hit.entry.id for hits in found for hit in hits}, now)
        found = [index.match(plate, text, province, now) for plate, text, province in reads]
    return found
