"""lpr_records' monthly partitions on PostgreSQL (SPEC §14 "PostgreSQL at scale").

lpr_records is partitioned by range on received_at, one partition per UTC month named
lpr_records_yYYYYmMM, plus lpr_records_default for any read whose month has no partition yet (a
server left without `flask lpr cleanup` or a daemon restart for months). `ensure_partitions` makes the
current month and the next AHEAD_MONTHS exist; when the default partition already holds rows of a month
being made, they are moved into it in the same transaction. SQLite has no partitions: every function
here does nothing there.

Retention (retention.py) drops whole partitions: `detach` takes one out of lpr_records (its rows are
gone for the app from then on), `detached` lists partitions taken out by a cleanup that did not finish,
and `drop` removes one once its files and the rows that point at its reads are gone.
"""

import re
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

TABLE = "lpr_records"
DEFAULT = "lpr_records_default"
AHEAD_MONTHS = 2  # SPEC §14: at least two months ahead
_NAME = re.compile(r"^lpr_records_y(\d{4})m(\d{2})$")
# One transaction at a time makes or detaches partitions (the daemons' start and the cleanup may meet).
_LOCK_KEY = 7424_0014


@dataclass(frozen=True)
class Month:
    year: int
    month: int

    @classmethod
    def of(cls, moment: datetime) -> "Month":
        moment = moment.astimezone(UTC)
        return cls(moment.year, moment.month)

    @classmethod
    def from_name(cls, name: str) -> "Month | None":
        found = _NAME.match(name)
        return cls(int(found[1]), int(found[2])) if found and 1 <= int(found[2]) <= 12 else None

    def next(self, months: int = 1) -> "Month":
        index = self.year * 12 + self.month - 1 + months
        return Month(index // 12, index % 12 + 1)

    @property
    def start(self) -> datetime:
        return datetime(self.year, self.month, 1, tzinfo=UTC)

    @property
    def end(self) -> datetime:
        return self.next().start

    @property
    def name(self) -> str:
        return f"{TABLE}_y{self.year:04d}m{self.month:02d}"


def is_partition_name(name: str | None) -> bool:
    """Whether `name` is one of lpr_records' partitions (a month's or the default one)."""
    return name == DEFAULT or (name is not None and Month.from_name(name) is not None)


def is_partitioned(conn: Connection | Session) -> bool:
    """Whether lpr_records is a partitioned table (PostgreSQL past migration 0012)."""
    dialect = conn.dialect if isinstance(conn, Connection) else conn.get_bind().dialect
    if dialect.name != "postgresql":
        return False
    return bool(conn.execute(text(
        "SELECT 1 FROM pg_partitioned_table WHERE partrelid = to_regclass(:t)"), {"t": TABLE}).scalar())


def attached(conn: Connection | Session) -> list[str]:
    """The names of lpr_records' partitions, the default one included."""
    return list(conn.execute(text(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "WHERE i.inhparent = to_regclass(:t) ORDER BY c.relname"), {"t": TABLE}).scalars())


def detached(conn: Connection | Session) -> list[str]:
    """Month tables no longer attached to lpr_records: partitions a cleanup detached and did not drop."""
    names = conn.execute(text(
        "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE c.relkind = 'r' AND n.nspname = current_schema() AND c.relname LIKE 'lpr\\_records\\_y%' "
        "AND NOT c.relispartition ORDER BY c.relname")).scalars()
    return [name for name in names if Month.from_name(name)]


def ensure_months(conn: Connection | Session, first: Month, last: Month) -> list[str]:
    """Make the month partitions from `first` to `last` (both included) and the default one where they are
    missing; return the names made. The caller commits."""
    conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _LOCK_KEY})
    have = set(attached(conn))
    made = []
    if DEFAULT not in have:
        conn.execute(text(f"CREATE TABLE {DEFAULT} PARTITION OF {TABLE} DEFAULT"))
        _name_indexes(conn, DEFAULT)
        made.append(DEFAULT)
    month = first
    while (month.year, month.month) <= (last.year, last.month):
        if month.name not in have:
            _make(conn, month)
            _name_indexes(conn, month.name)
            made.append(month.name)
        month = month.next()
    return made


def _make(conn: Connection | Session, month: Month) -> None:
    bounds = {"a": month.start, "b": month.end}
    waiting = conn.execute(text(f"SELECT 1 FROM {DEFAULT} WHERE received_at >= :a AND received_at < :b "
                                "LIMIT 1"), bounds).scalar()
    values = f"FOR VALUES FROM ('{month.start.isoformat()}') TO ('{month.end.isoformat()}')"
    if not waiting:
        conn.execute(text(f"CREATE TABLE {month.name} PARTITION OF {TABLE} {values}"))
        return
    # Reads of this month already sit in the default partition: a partition cannot be made over them,
    # so the month's table is filled first (the rows leave the default one) and then attached.
    conn.execute(text(f"CREATE TABLE {month.name} (LIKE {TABLE} INCLUDING DEFAULTS)"))
    conn.execute(text(f"WITH moved AS (DELETE FROM {DEFAULT} WHERE received_at >= :a AND received_at < :b "
                      f"RETURNING *) INSERT INTO {month.name} SELECT * FROM moved"), bounds)
    conn.execute(text(f"ALTER TABLE {TABLE} ATTACH PARTITION {month.name} {values}"))


def _name_indexes(conn: Connection | Session, partition: str) -> None:
    """Name a partition's copies of lpr_records' indexes (its primary key's too) after them:
    ix_lpr_records_plate_trgm's copy on lpr_records_y2026m12 is ix_lpr_records_plate_trgm_y2026m12 (PostgreSQL
    would call it lpr_records_y2026m12_plate_normalized_idx), so a plan names the index it uses."""
    suffix = partition.removeprefix(f"{TABLE}_")
    rows = conn.execute(text(
        "SELECT c.relname, p.relname FROM pg_index x JOIN pg_class c ON c.oid = x.indexrelid "
        "JOIN pg_inherits i ON i.inhrelid = x.indexrelid JOIN pg_class p ON p.oid = i.inhparent "
        "WHERE x.indrelid = to_regclass(:t)"), {"t": partition}).all()
    for child, parent in rows:
        wanted = f"{parent[:63 - len(suffix) - 1]}_{suffix}"
        if child != wanted:
            conn.execute(text(f'ALTER INDEX "{child}" RENAME TO "{wanted}"'))


def name_indexes(conn: Connection | Session) -> None:
    """Name every partition's copies of lpr_records' indexes after them (see _name_indexes); for a
    migration that makes the indexes after the partitions. The caller commits."""
    for partition in attached(conn):
        _name_indexes(conn, partition)


def ensure_partitions(conn: Connection | Session, now: datetime | None = None) -> list[str]:
    """Make this UTC month's partition and the next AHEAD_MONTHS' (and the default one) where missing;
    return the names made. Nothing on SQLite or an unpartitioned table. The caller commits."""
    if not is_partitioned(conn):
        return []
    this = Month.of(now or datetime.now(UTC))
    return ensure_months(conn, this, this.next(AHEAD_MONTHS))


def months(conn: Connection | Session) -> list[Month]:
    """The months that have a partition attached, oldest first."""
    return sorted((m for m in map(Month.from_name, attached(conn)) if m), key=lambda m: (m.year, m.month))


def detach(conn: Connection | Session, month: Month) -> None:
    """Take the month's partition out of lpr_records (its rows leave the app's sight); the caller commits."""
    conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _LOCK_KEY})
    conn.execute(text(f"ALTER TABLE {TABLE} DETACH PARTITION {month.name}"))


def drop(conn: Connection | Session, name: str) -> None:
    """Drop a detached month table; the caller commits."""
    if Month.from_name(name) is None:
        raise ValueError(f"not a month partition: {name!r}")
    conn.execute(text(f"DROP TABLE IF EXISTS {name}"))
