"""Record queries shared by the pages and the REST API: one filter, keyset paging, CSV export.

The records page and `GET /api/records` take their filters under different names (the page's form
fields, the API's documented query arguments) and both turn them into one `RecordFilter`, so the two
always find the same records (docs/api.md). Its time range is on `received_at`, the server's clock: edge
cameras' clocks may be wrong or unset, and that column is indexed (alone and after `camera_id`).
"""

import csv
import io
import re
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Select, and_, false, func, or_, select, text
from sqlalchemy.orm import Session

from .models import Camera, Record
from .plates import MAX_PLATE_LENGTH, normalize_plate, parse_plate, province_by_code, similar_regexes
from .sites import EVERYWHERE, Scope
from .times import YEARS, parse_local

# similar: look-alikes (plates.LOOKALIKE_CLASSES), or one edit away for plates of 5+ characters
PLATE_MODES = ("exact", "prefix", "contains", "similar")
WHOLE_PLATE_MODES = ("exact", "similar")  # modes that compare the whole plate: a typed province is dropped
COUNT_CAP = 10_000  # counting millions of rows on every page view would be the slow part
ESTIMATE_ABOVE = 100_000  # a table this big is counted by PostgreSQL's estimate, not row by row
EXPORT_CHUNK = 1000
# When a page reads its time range first (see range_first): walking the ids passes a row about 3 times
# faster than the range is read and sorted; with fewer newer rows than WALK_ALWAYS_BELOW, walking takes
# about a millisecond.
WALK_FASTER = 3
WALK_ALWAYS_BELOW = 3_000
CHECKED = ("1", "true", "on", "yes")  # a checkbox's values
CSV_COLUMNS = ("id", "captured_at", "received_at", "camera_id", "plate_number", "plate_normalized",
               "province", "province_code", "plate_format", "confidence", "location", "latitude",
               "longitude", "vehicle_type", "vehicle_color", "direction", "blacklisted", "image_sha256",
               "event_id")


class FilterError(ValueError):
    """A filter value that cannot be understood; `field` names it."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class RecordFilter:
    """What to find. `plate` is normalised (`normalize_plate`); `since` and `until` bound the time the
    server received the read (until exclusive); `blacklisted` keeps only hits (True) or only the others
    (False); `since_id` keeps only records with a larger id (the API's polling); `province_code` is a
    known ISO 3166-2:TH code (`TH-10`) or empty."""

    plate: str = ""
    plate_mode: str = "contains"
    camera_id: str = ""
    since: datetime | None = None
    until: datetime | None = None
    min_confidence: float | None = None
    blacklisted: bool | None = None
    since_id: int | None = None
    province_code: str = ""

    @classmethod
    def from_args(cls, args: Mapping[str, str], timezone: str) -> "RecordFilter":
        """Read a filter from query arguments; times without an offset are in `timezone`."""
        mode = args.get("plate_mode") or "contains"
        if mode not in PLATE_MODES:
            raise FilterError("plate_mode", f"plate_mode must be one of {', '.join(PLATE_MODES)}")
        for name in ("plate", "camera_id", "province_code"):
            if "\x00" in (args.get(name) or ""):
                raise FilterError(name, f"{name} must not hold a NUL character")
        return cls(
            plate=search_plate(args.get("plate") or "", mode),
            plate_mode=mode,
            province_code=known_province_code(args.get("province_code") or ""),
            camera_id=(args.get("camera_id") or "").strip(),
            since=_time(args, "since", timezone),
            until=_time(args, "until", timezone),
            min_confidence=_number(args, "min_confidence"),
            blacklisted=True if (args.get("blacklisted") or "").lower() in CHECKED else None,  # hits only
        )

    def query_args(self, timezone: str) -> dict[str, str]:
        """Return the filter as query arguments (for links that keep it)."""
        tz = ZoneInfo(timezone)
        out = {"plate": self.plate, "plate_mode": self.plate_mode, "camera_id": self.camera_id,
               "since": _local_input(self.since, tz), "until": _local_input(self.until, tz),
               "min_confidence": "" if self.min_confidence is None else f"{self.min_confidence:g}",
               "blacklisted": "1" if self.blacklisted else "", "province_code": self.province_code}
        return {k: v for k, v in out.items() if v and not (k == "plate_mode" and not self.plate)}

    def as_audit(self) -> dict[str, Any]:
        return {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in asdict(self).items() if v}


def search_plate(text: str, mode: str) -> str:
    """The normalised plate to search for. A mode that compares the whole plate drops the province the
    text may carry ("กข 1234 กรุงเทพมหานคร"), as records keep their plates without it."""
    if mode in WHOLE_PLATE_MODES:
        return parse_plate(text[:256]).normalized[:64]
    return normalize_plate(text)[:64]


def province_error(value: str) -> str:
    """What to say about a province_code that names no province (after the field's name)."""
    shown = value if len(value) <= 16 else value[:16] + "…"
    return f"{shown!r} is not a Thai province's code: use ISO 3166-2:TH, such as TH-10 (Bangkok)"


def known_province_code(value: str) -> str:
    """The canonical code of a province_code argument (`th-10` -> `TH-10`), "" for none; FilterError when
    it names no province."""
    value = value.strip()
    if not value:
        return ""
    province = province_by_code(value)
    if province is None:
        raise FilterError("province_code", "province_code " + province_error(value))
    return province.code


def similar_patterns(plate: str) -> list[str]:
    """The anchored regular expressions (plates.similar_regexes) whose union is the plates similar to
    `plate`: look-alikes, or one edit away at 5+ characters. None for a plate longer than any stored
    one plus an edit. Python's, PostgreSQL's and JavaScript's syntax alike (the page's live rows)."""
    return [] if len(plate) > MAX_PLATE_LENGTH + 1 else similar_regexes(plate)


def similar_condition(plate: str):
    """Plates similar to `plate`: an OR, over the similar patterns, of (the regular expression AND a LIKE
    pattern it implies). PostgreSQL answers each arm with one scan of the trigram index (a BitmapOr of
    them); SQLite runs the expressions with Python's `re` (SQLAlchemy registers REGEXP for pysqlite)."""
    patterns = similar_patterns(plate)
    if not patterns:
        return false()
    return or_(*(and_(Record.plate_normalized.regexp_match(pattern),
                      Record.plate_normalized.like(like, escape="\\"))
                 for pattern in patterns for like in like_skeletons(pattern)))


# Why the LIKE patterns: pg_trgm takes trigrams from a regular expression only where the regex engine
# can list a color's characters (U+07FF and below), so a Thai letter is a wildcard there, and the end
# anchor gives none: `^ก[ขฃชซ][1IL][2Z].34$` has no run of three listed characters and its index scan
# returned every row. LIKE's trigrams keep Thai letters: `ก____34` (starts with ก, ends with 34). Where
# a skeleton still gives nothing selective (`^[ขฃชซ][ขฃชซ][1IL][2Z].4$`: `_____4`), its look-alike
# classes are spelled out from the left until it does, up to MAX_SPELLED skeletons per pattern:
# `ขข____4`, `ขฃ____4`, …
MAX_SPELLED = 16
_REGEX_TOKEN = re.compile(r"\[[^\]]*\]|\\.|.", re.DOTALL)


def _tokens(pattern: str) -> list[str]:
    return _REGEX_TOKEN.findall(pattern.removeprefix("^").removesuffix("$"))


def _ascii_word(token: str) -> bool:
    """Whether pg_trgm can take this token of a regular expression into a trigram."""
    chars = token[1:-1] if token[0] == "[" else token[-1] if token != "." else ""
    return bool(chars) and chars.isascii() and chars.isalnum()


def _selective(words: list[bool]) -> bool:
    """Whether a row of positions (True: a character trigrams can use) yields a selective trigram: three
    in a row, or two at the start (`  a`, ` ab`)."""
    run = best = 0
    for known in words:
        run = run + 1 if known else 0
        best = max(best, run)
    return best >= 3 or words[:2] == [True, True]


def like_skeletons(pattern: str) -> list[str]:
    """The LIKE patterns whose union holds every plate the anchored similar `pattern` matches: each class
    or `.` one character (`_`), the rest themselves (`^ก[ขฃชซ].34$` -> `ก__34`); Thai classes spelled out
    when neither the regex nor the skeleton gives the index a selective trigram (see above)."""
    tokens = _tokens(pattern)
    literal = [None if t[0] == "[" or t == "." else t[-1] for t in tokens]
    if _selective([_ascii_word(t) for t in tokens]) or _selective([bool(c and c.isalnum()) for c in literal]):
        return [_skeleton(literal)]
    spelled: list[list[str | None]] = [literal]
    for i, token in enumerate(tokens):
        if token[0] != "[":
            continue
        if len(spelled) * (len(token) - 2) > MAX_SPELLED:
            break
        spelled = [[*s[:i], ch, *s[i + 1:]] for s in spelled for ch in token[1:-1]]
        if _selective([bool(c and c.isalnum()) for c in spelled[0]]):
            break
    return [_skeleton(s) for s in spelled]


def _skeleton(chars: list[str | None]) -> str:
    return "".join("_" if ch is None else _like_escape(ch) for ch in chars)


def _time(args: Mapping[str, str], name: str, timezone: str) -> datetime | None:
    value = (args.get(name) or "").strip()
    if not value:
        return None
    try:
        return parse_local(value, timezone)
    except ValueError:
        raise FilterError(name, f"{name} is not a date and time (YYYY-MM-DDTHH:MM) in the years "
                                f"{YEARS[0]}-{YEARS[1]}") from None


def _number(args: Mapping[str, str], name: str) -> float | None:
    value = (args.get(name) or "").strip()
    if not value:
        return None
    try:
        number = float(value)
    except ValueError:
        raise FilterError(name, f"{name} is not a number") from None
    if not 0 <= number <= 100:
        raise FilterError(name, f"{name} must be between 0 and 100")
    return number


def _local_input(moment: datetime | None, tz: ZoneInfo) -> str:
    return moment.astimezone(tz).strftime("%Y-%m-%dT%H:%M") if moment else ""


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def scoped(query: Select, camera_column, scope: Scope = EVERYWHERE) -> Select:
    """Keep the rows of a query whose camera (`camera_column`) `scope` sees (SPEC §15 "Sites"). An
    unlimited scope adds nothing, so an unlimited user's SQL is exactly what it was before sites."""
    return query.where(scope.cameras_clause(camera_column)) if scope.limited else query


def filtered(query: Select, f: RecordFilter, scope: Scope = EVERYWHERE) -> Select:
    """Add the filter's conditions, and the scope's cameras (SPEC §15 "Sites"), to a query over Record."""
    query = scoped(query, Record.camera_id, scope)
    if f.plate:
        if f.plate_mode == "exact":
            query = query.where(Record.plate_normalized == f.plate)
        elif f.plate_mode == "prefix":
            query = query.where(Record.plate_normalized.like(_like_escape(f.plate) + "%", escape="\\"))
        elif f.plate_mode == "similar":
            query = query.where(similar_condition(f.plate))
        else:
            query = query.where(Record.plate_normalized.like("%" + _like_escape(f.plate) + "%", escape="\\"))
    if f.camera_id:
        query = query.where(Record.camera_id == f.camera_id)
    if f.province_code:
        query = query.where(Record.province_code == f.province_code)
    if f.since:
        query = query.where(Record.received_at >= f.since)
    if f.until:
        query = query.where(Record.received_at < f.until)
    if f.min_confidence is not None:
        query = query.where(Record.confidence >= f.min_confidence)
    if f.blacklisted is not None:
        query = query.where(Record.blacklisted.is_(f.blacklisted))
    if f.since_id is not None:
        query = query.where(Record.id > f.since_id)
    return query


@dataclass
class RecordPage:
    records: list[Record]
    newer: int | None  # pass as `after` to get the page of newer records
    older: int | None  # pass as `before` to get the page of older records


def page_records(session: Session, f: RecordFilter, per_page: int = 50, before: int | None = None,
                 after: int | None = None, *, scope: Scope = EVERYWHERE) -> RecordPage:
    """Return one page, newest first, by keyset on id: fast at any depth of a large table."""
    first = before is None and after is None
    statement = page_statement(f, per_page + 1, before=before, after=after,
                               range_first=first and range_first(session, f), scope=scope)
    rows = list(session.scalars(statement))
    if after is not None:
        more_newer = len(rows) > per_page
        rows = list(reversed(rows[:per_page]))
        return RecordPage(rows, rows[0].id if rows and more_newer else None,
                          rows[-1].id if rows else None)
    more_older = len(rows) > per_page
    rows = rows[:per_page]
    return RecordPage(rows, rows[0].id if rows and before is not None else None,
                      rows[-1].id if rows and more_older else None)


def page_statement(f: RecordFilter, limit: int, before: int | None = None,
                   after: int | None = None, range_first: bool = False, *,
                   scope: Scope = EVERYWHERE) -> Select:
    """Return one page's SELECT: `limit` rows older than `before` newest first, or newer than `after`
    oldest first. `range_first`: see `range_first()`."""
    query = filtered(select(Record), f, scope)
    if after is not None:
        return query.where(Record.id > after).order_by(_oldest_first(matches_first(f))).limit(limit)
    if before is not None:
        query = query.where(Record.id < before)
    return query.order_by(_newest_first(range_first or matches_first(f))).limit(limit)


def matches_first(f: RecordFilter) -> bool:
    """Whether a page of `f` should read the rows its plate selects and sort them, never walk the ids.

    A similar-plate search matches a handful of rows, but PostgreSQL cannot estimate how many plates a
    regular expression matches: it guesses about 0.01 % for each of the search's 20-odd expressions, so
    walking the primary key down until the page is full looks cheap to it, and reads the whole table
    when (as usual) fewer than a page match. Ordered by `id + 0`, the rows come from the trigram index
    (a BitmapOr of its scans) and are sorted."""
    return f.plate_mode == "similar" and bool(f.plate)


def range_first(session: Session, f: RecordFilter) -> bool:
    """Whether the first page of `f` should read its time range first, rather than walk the ids down.

    Pages come newest first, and the database gets them by walking the primary key down from the
    newest row until the page is full. For a time range that ends in the past, that walk first passes
    every row received after it: 0.9–1.9 s at 5 M rows for one day 60–89 days back, and 27–43 s on a
    cold cache. Reading that day's 55,556 rows through the `received_at` index and sorting them took
    43–85 ms instead, but about three times as long per row as the walk (BENCHMARKS.md, "Records queries"). So
    the range is read first when the walk would pass WALK_FASTER times more rows than the range holds.
    Ids are handed out as reads arrive, so the rows are estimated from ids: the first id received at
    or after each end of the range, and the newest id, three probes of an index. The choice only
    decides how the page is read, never which rows it has."""
    if f.until is None:
        return False
    newest = session.scalar(select(func.max(Record.id)))
    end = _first_id_at(session, f.until)
    if newest is None or end is None:  # nothing came after the range: the walk starts in it
        return False
    oldest = select(func.min(Record.id))
    start = _first_id_at(session, f.since) if f.since is not None else session.scalar(oldest)
    inside = max(0, end - start) if start is not None else 0
    after = newest - end + 1
    return after > WALK_ALWAYS_BELOW and after > WALK_FASTER * inside


def _first_id_at(session: Session, moment: datetime) -> int | None:
    """The id of the first record received at or after `moment` (by the `received_at` index)."""
    query = select(Record.id).where(Record.received_at >= moment).order_by(Record.received_at).limit(1)
    return session.scalar(query)


def _newest_first(range_first: bool):
    # `id + 0` sorts the same, but no index provides that order, so the planner reads the rows the
    # filter selects (the time range, through its index) and sorts them, instead of walking the ids.
    return (Record.id + 0).desc() if range_first else Record.id.desc()


def _oldest_first(matches_first: bool):
    return (Record.id + 0).asc() if matches_first else Record.id.asc()


def find_records(session: Session, f: RecordFilter, page: int = 1, per_page: int = 50,
                 before_id: int | None = None, *, scope: Scope = EVERYWHERE) -> list[Record]:
    """Return one page for the API: by OFFSET for `page` (from 1), or the ones older than `before_id`.

    Newest first; oldest first when polling with `since_id`, so a poller never skips a record.
    Keyset paging (`before_id`) costs the same at any depth; OFFSET reads every row it skips.
    """
    query = filtered(select(Record), f, scope)
    if f.since_id is not None:
        query = query.order_by(_oldest_first(matches_first(f)))
    else:
        sort = matches_first(f) or (before_id is None and range_first(session, f))
        query = query.order_by(_newest_first(sort))
    query = query.limit(per_page)
    if before_id is not None:
        return list(session.scalars(query.where(Record.id < before_id)))
    return list(session.scalars(query.offset((page - 1) * per_page)))


def iter_records(session: Session, f: RecordFilter, chunk: int = EXPORT_CHUNK, *,
                 scope: Scope = EVERYWHERE) -> Iterator[Record]:
    """Yield every matching record, newest first, a keyset page at a time (for exports); the session's
    identity map is emptied after each page, so it does not grow with the export."""
    before = None
    while True:
        page = page_records(session, f, chunk, before=before, scope=scope)
        yield from page.records
        session.expunge_all()
        if page.older is None:
            return
        before = page.older


@dataclass(frozen=True)
class Total:
    """How many records match, and how sure the figure is.

    `kind` is "exact"; "at_least" when counting stopped at the cap (there are more than `value`);
    or "estimate" for the whole table on PostgreSQL, the planner's row estimate.
    """

    value: int
    kind: str = "exact"

    def as_json(self, name: str = "total") -> dict[str, Any]:
        return {name: self.value, f"{name}_kind": self.kind}


def count_records(session: Session, f: RecordFilter, cap: int | None = COUNT_CAP, *,
                  scope: Scope = EVERYWHERE) -> Total:
    """Count the matching records, stopping at `cap` (None: count them all). A site-limited scope is
    never "unfiltered": the whole table's estimate would count other sites' reads."""
    return capped_count(session, filtered(select(Record.id), f, scope), cap,
                        unfiltered=f == RecordFilter() and not scope.limited)


def capped_count(session: Session, ids: Select, cap: int | None, unfiltered: bool = False) -> Total:
    """Count the rows of `ids` up to `cap`; past it, estimate the whole table or say "at least"."""
    if cap is None:
        return Total(session.scalar(select(func.count()).select_from(ids.subquery())))
    found = session.scalar(capped_count_statement(ids, cap))
    if found <= cap:
        return Total(found)
    if unfiltered:
        return total_reads(session)
    return Total(cap, "at_least")


def capped_count_statement(ids: Select, cap: int) -> Select:
    """Return a count of the rows of `ids` that stops after cap + 1 of them."""
    return select(func.count()).select_from(ids.limit(cap + 1).subquery())


def total_reads(session: Session) -> Total:
    """Return how many records there are: on PostgreSQL the planner's estimate if it is large."""
    if session.get_bind().dialect.name == "postgresql":
        estimate = session.scalar(ESTIMATED_ROWS)
        if estimate is not None and estimate > ESTIMATE_ABOVE:
            return Total(round(estimate), "estimate")
    return Total(session.scalar(select(func.count()).select_from(Record)))


# What the planner itself assumes: rows per page at the last ANALYZE, times the pages there are now; summed
# over the monthly partitions where lpr_records is partitioned (SPEC §14), whose parent holds no pages.
ESTIMATED_ROWS = text(
    "SELECT sum(CASE WHEN reltuples >= 0 AND relpages > 0 THEN reltuples / relpages * "
    "(pg_relation_size(oid) / current_setting('block_size')::int) END) "
    "FROM pg_class WHERE oid = 'lpr_records'::regclass "
    "OR oid IN (SELECT inhrelid FROM pg_inherits WHERE inhparent = 'lpr_records'::regclass)")


def records_after(session: Session, after_id: int, limit: int = 100, *,
                  scope: Scope = EVERYWHERE) -> list[Record]:
    """Return records stored after `after_id`, oldest first (what a reconnecting browser missed)."""
    query = scoped(select(Record).where(Record.id > after_id), Record.camera_id, scope) \
        .order_by(Record.id.asc()).limit(limit)
    return list(session.scalars(query))


def visible_record(session: Session, record_id: int, scope: Scope = EVERYWHERE) -> Record | None:
    """The record, or None when there is none or its camera is not one `scope` sees: a record of another
    site answers 404 like a missing one (SPEC §15 "Sites")."""
    record = session.get(Record, record_id)
    if record is None or (scope.limited and not scope.sees_camera(session.get(Camera, record.camera_id))):
        return None
    return record


def camera_names(session: Session, *, scope: Scope = EVERYWHERE) -> dict[str, str | None]:
    """Each camera's name by id (the cameras `scope` sees: the filters' camera choices)."""
    query = select(Camera.id, Camera.name).order_by(Camera.id)
    if scope.limited:
        query = query.where(scope.sites_clause(Camera.site))
    return dict(session.execute(query).all())


def _cell(value: Any, tz: ZoneInfo) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(tz).isoformat()
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value  # keep spreadsheets from running a plate as a formula
    return value


def export_csv(session: Session, f: RecordFilter, timezone: str, columns: tuple[str, ...] = CSV_COLUMNS,
               bom: bool = True, *, scope: Scope = EVERYWHERE) -> Iterator[str]:
    """Yield the matching records as CSV text, newest first, a chunk at a time; times in `timezone`.

    The page's export starts with a BOM, which tells spreadsheet programs the Thai text is UTF-8;
    the API's has none (and its own column order, kept for the integrators that read it)."""
    tz = ZoneInfo(timezone)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(columns)
    yield ("\ufeff" if bom else "") + _taken(out)
    for count, record in enumerate(iter_records(session, f, scope=scope), start=1):
        writer.writerow([_cell(getattr(record, column), tz) for column in columns])
        if count % EXPORT_CHUNK == 0:
            yield _taken(out)
    yield _taken(out)


def _taken(out: io.StringIO) -> str:
    """Return what was written to `out` and empty it."""
    text = out.getvalue()
    out.seek(0)
    out.truncate()
    return text
