"""Thai plates as identity: a record's province code and plate format, blacklist match modes.

Existing records are parsed again (lprserver.plates.parse_plate) in batches of ids: the province a
plate text carried leaves `plate_normalized`, and `province` becomes the canonical Thai name with its
code. README "Upgrade" gives the time this takes at 5 M rows.

Revision ID: 0004_thai_plates
Revises: 0003_web_sessions
Create Date: 2026-12-02 13:00:00

"""
from collections.abc import Sequence
from functools import lru_cache

import sqlalchemy as sa
from alembic import op

from lprserver.plates import parse_plate

# revision identifiers, used by Alembic.
revision: str = '0004_thai_plates'
down_revision: str | Sequence[str] | None = '0003_web_sessions'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BATCH = 20_000

records = sa.table(
    "lpr_records", sa.column("id", sa.BigInteger), sa.column("plate_number", sa.String),
    sa.column("plate_normalized", sa.String), sa.column("province", sa.String),
    sa.column("province_code", sa.String), sa.column("plate_format", sa.String))
entries = sa.table(
    "blacklist_plates", sa.column("id", sa.Integer), sa.column("license_plate_text", sa.String),
    sa.column("plate_normalized", sa.String), sa.column("province_code", sa.String))


def upgrade() -> None:
    """Upgrade schema."""
    with op.batch_alter_table('lpr_records', schema=None) as batch_op:
        batch_op.add_column(sa.Column('province_code', sa.String(length=8), nullable=True))
        batch_op.add_column(sa.Column('plate_format', sa.String(length=16), server_default='other', nullable=False))
    with op.batch_alter_table('blacklist_plates', schema=None) as batch_op:
        batch_op.add_column(sa.Column('match', sa.String(length=16), server_default='exact', nullable=False))
        batch_op.add_column(sa.Column('province_code', sa.String(length=8), nullable=True))
        batch_op.create_check_constraint(op.f('ck_blacklist_plates_match'), "match IN ('exact', 'lookalike', 'fuzzy', 'pattern')")
    bind = op.get_bind()
    _parse_records(bind)
    for row in bind.execute(sa.select(entries.c.id, entries.c.license_plate_text)).all():
        parsed = parse_plate(row.license_plate_text)
        bind.execute(entries.update().where(entries.c.id == row.id).values(
            plate_normalized=parsed.normalized, province_code=parsed.province_code))
    # Built after the rows are filled: one sort instead of an index update per row.
    with op.batch_alter_table('lpr_records', schema=None) as batch_op:
        batch_op.create_index('ix_lpr_records_province_received', ['province_code', 'received_at'], unique=False)


@lru_cache(maxsize=65536)
def _parsed(plate_number: str, province: str | None) -> tuple[str, str | None, str | None, str]:
    parsed = parse_plate(plate_number, province)
    return parsed.normalized, parsed.province, parsed.province_code, parsed.format


def _parse_records(bind) -> None:
    last = 0
    while True:
        rows = bind.execute(
            sa.select(records.c.id, records.c.plate_number, records.c.plate_normalized, records.c.province)
            .where(records.c.id > last).order_by(records.c.id).limit(BATCH)).all()
        if not rows:
            return
        last = rows[-1].id
        changed = []
        for row in rows:
            values = _parsed(row.plate_number, row.province)
            if values != (row.plate_normalized, row.province, None, "other"):
                changed.append((row.id, *values))
        if changed:
            _update(bind, changed)


def _update(bind, changed: list[tuple]) -> None:
    if bind.dialect.name == "postgresql":
        from psycopg2.extras import execute_values

        cursor = bind.connection.dbapi_connection.cursor()
        execute_values(
            cursor,
            "UPDATE lpr_records AS r SET plate_normalized = v.n, province = v.p, province_code = v.c, "
            "plate_format = v.f FROM (VALUES %s) AS v(id, n, p, c, f) WHERE r.id = v.id",
            changed, template="(%s::bigint, %s, %s, %s, %s)", page_size=5000)
        return
    bind.execute(
        records.update().where(records.c.id == sa.bindparam("_id")).values(
            plate_normalized=sa.bindparam("n"), province=sa.bindparam("p"),
            province_code=sa.bindparam("c"), plate_format=sa.bindparam("f")),
        [{"_id": i, "n": n, "p": p, "c": c, "f": f} for i, n, p, c, f in changed])


def downgrade() -> None:
    """Downgrade schema. The provinces stay out of `plate_normalized`; `province` keeps its canonical name."""
    with op.batch_alter_table('lpr_records', schema=None) as batch_op:
        batch_op.drop_index('ix_lpr_records_province_received')
        batch_op.drop_column('plate_format')
        batch_op.drop_column('province_code')
    with op.batch_alter_table('blacklist_plates', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_blacklist_plates_match'), type_='check')
        batch_op.drop_column('province_code')
        batch_op.drop_column('match')
