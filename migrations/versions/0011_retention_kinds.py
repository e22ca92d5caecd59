"""Retention by kind (SPEC §15): an index on blacklist_detections.record_id.

The cleanup tells a blacklist hit from another read (`EXISTS` a detection of it) and deletes reads
in batches; PostgreSQL's ON DELETE CASCADE then looks for each deleted read's detections. Without
this index each of those looks scanned the whole detections table.

Revision ID: 0011_retention_kinds
Revises: 0010_sites
Create Date: 2026-12-04 13:40:00

"""
from collections.abc import Sequence

from alembic import op

# revision identifiers, used by Alembic.
revision: str = '0011_retention_kinds'
down_revision: str | Sequence[str] | None = '0010_sites'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    with op.batch_alter_table('blacklist_detections') as batch:
        batch.create_index('ix_blacklist_detections_record', ['record_id'], unique=False)


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table('blacklist_detections') as batch:
        batch.drop_index('ix_blacklist_detections_record')
