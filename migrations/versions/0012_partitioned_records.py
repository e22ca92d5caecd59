"""lpr_records partitioned by month on PostgreSQL; dedupe keys in lpr_record_keys (SPEC §14, §2.5).

PostgreSQL: the table is converted in one transaction (the site is down meanwhile: README "Partitions"
says how long per million reads). The old table is renamed, a table partitioned by range on received_at
is made with the same columns and a primary key of (id, received_at), with partitions for every month
that holds reads up to two months ahead and a default one; the rows are copied, the indexes made again
(after the copy: faster), ids go on from the same sequence, and the old table is dropped. The foreign
keys from blacklist_detections, visits and alerts to lpr_records.id go: no foreign key can name a
partitioned table's id alone, so the deleters remove or clear those rows themselves
(retention.delete_children). The unique (camera_id, event_id) cannot stay either (a partitioned table's
unique indexes must hold received_at): it moves to lpr_record_keys.

Both databases: lpr_record_keys is made and filled from the stored reads. SQLite keeps its table.

Revision ID: 0012_partitioned_records
Revises: 0011_retention_kinds
Create Date: 2026-12-07 20:00:00

"""
from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

from lprserver import partitions

# revision identifiers, used by Alembic.
revision: str = '0012_partitioned_records'
down_revision: str | Sequence[str] | None = '0011_retention_kinds'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BigId = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')
# The children's references to lpr_records.id: (table, column, constraint, ON DELETE).
CHILDREN = (
    ('blacklist_detections', 'record_id', 'fk_blacklist_detections_record_id_lpr_records', 'CASCADE'),
    ('visits', 'entry_record_id', 'fk_visits_entry_record_id_lpr_records', 'SET NULL'),
    ('visits', 'exit_record_id', 'fk_visits_exit_record_id_lpr_records', 'SET NULL'),
    ('alerts', 'record_id', 'fk_alerts_record_id_lpr_records', 'CASCADE'),
)


def _index_definitions(conn, table: str) -> list[tuple[str, str]]:
    """(name, CREATE INDEX …) of the table's indexes that back no constraint."""
    rows = conn.execute(sa.text(
        "SELECT c.relname, pg_get_indexdef(i.indexrelid) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
        "WHERE i.indrelid = to_regclass(:t) AND NOT EXISTS "
        "(SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid) ORDER BY c.relname"), {"t": table})
    return [(name, definition) for name, definition in rows]


def _swap_out(conn, new_name: str) -> list[str]:
    """Rename lpr_records to `new_name` and drop its indexes (their names are the new table's); return
    their definitions, naming lpr_records."""
    definitions = _index_definitions(conn, 'lpr_records')
    for (table, _, constraint, _) in CHILDREN:
        op.execute(f'ALTER TABLE {table} DROP CONSTRAINT IF EXISTS {constraint}')
    op.execute(f'ALTER TABLE lpr_records RENAME TO {new_name}')
    op.execute(f'ALTER TABLE {new_name} RENAME CONSTRAINT pk_lpr_records TO pk_{new_name}')
    op.execute(f'ALTER TABLE {new_name} RENAME CONSTRAINT fk_lpr_records_camera_id_cameras '
               f'TO fk_{new_name}_camera_id')
    for name, _ in definitions:
        op.execute(f'DROP INDEX {name}')
    op.execute('ALTER SEQUENCE lpr_records_id_seq OWNED BY NONE')
    # pg_get_indexdef names the table as `ON public.lpr_records` (or ONLY, for a partitioned one).
    return [definition.replace(' ON ONLY ', ' ON ') for _, definition in definitions]


def _finish(old_name: str, definitions: list[str]) -> None:
    op.execute('ALTER TABLE lpr_records ADD CONSTRAINT fk_lpr_records_camera_id_cameras '
               'FOREIGN KEY (camera_id) REFERENCES cameras (id)')
    op.execute('ALTER SEQUENCE lpr_records_id_seq OWNED BY lpr_records.id')
    op.execute(f'INSERT INTO lpr_records SELECT * FROM {old_name}')
    op.execute(f'DROP TABLE {old_name} CASCADE')
    op.execute("SELECT setval('lpr_records_id_seq', GREATEST((SELECT max(id) FROM lpr_records), 1), "
               "(SELECT max(id) FROM lpr_records) IS NOT NULL)")
    for definition in definitions:
        op.execute(definition)


def _upgrade_postgresql(conn) -> None:
    definitions = _swap_out(conn, 'lpr_records_unpartitioned')
    op.execute('CREATE TABLE lpr_records (LIKE lpr_records_unpartitioned INCLUDING DEFAULTS INCLUDING CONSTRAINTS) '
               'PARTITION BY RANGE (received_at)')
    op.execute('ALTER TABLE lpr_records ADD CONSTRAINT pk_lpr_records PRIMARY KEY (id, received_at)')
    oldest = conn.execute(sa.text('SELECT min(received_at) FROM lpr_records_unpartitioned')).scalar()
    this = partitions.Month.of(datetime.now(UTC))
    first = min(this, partitions.Month.of(oldest), key=lambda m: (m.year, m.month)) if oldest else this
    partitions.ensure_months(conn, first, this.next(partitions.AHEAD_MONTHS))
    _finish('lpr_records_unpartitioned', definitions)
    partitions.name_indexes(conn)


def _downgrade_postgresql(conn) -> None:
    definitions = _swap_out(conn, 'lpr_records_partitioned')
    op.execute('CREATE TABLE lpr_records (LIKE lpr_records_partitioned INCLUDING DEFAULTS INCLUDING CONSTRAINTS)')
    op.execute('ALTER TABLE lpr_records ADD CONSTRAINT pk_lpr_records PRIMARY KEY (id)')
    _finish('lpr_records_partitioned', definitions)
    op.execute('ALTER TABLE lpr_records ADD CONSTRAINT uq_lpr_records_camera_event UNIQUE (camera_id, event_id)')
    for table, column, constraint, ondelete in CHILDREN:
        op.execute(f'ALTER TABLE {table} ADD CONSTRAINT {constraint} FOREIGN KEY ({column}) '
                   f'REFERENCES lpr_records (id) ON DELETE {ondelete}')


def upgrade() -> None:
    """Upgrade schema."""
    conn = op.get_bind()
    if conn.dialect.name == 'postgresql':
        _upgrade_postgresql(conn)
    op.create_table(
        'lpr_record_keys',
        sa.Column('camera_id', sa.String(length=64), nullable=False),
        sa.Column('event_id', sa.String(length=128), nullable=False),
        sa.Column('record_id', BigId, nullable=False),
        sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('camera_id', 'event_id', name=op.f('pk_lpr_record_keys')),
    )
    op.execute('INSERT INTO lpr_record_keys (camera_id, event_id, record_id, received_at) '
               'SELECT camera_id, event_id, id, received_at FROM lpr_records WHERE event_id IS NOT NULL')
    op.create_index('ix_lpr_record_keys_record', 'lpr_record_keys', ['record_id'], unique=False)


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_index('ix_lpr_record_keys_record', table_name='lpr_record_keys')
    op.drop_table('lpr_record_keys')
    conn = op.get_bind()
    if conn.dialect.name == 'postgresql':
        _downgrade_postgresql(conn)
