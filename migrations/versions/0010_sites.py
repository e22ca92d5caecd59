"""Sites (SPEC §15): a camera belongs to a site; a user may be limited to sites.

Two nullable columns and an index: no table is rewritten. A NULL camera site is "no site" (seen only
by users without a limit); a NULL or empty user list is "every site".

Revision ID: 0010_sites
Revises: 0009_report_schedules
Create Date: 2026-12-04 13:40:00

"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

# revision identifiers, used by Alembic.
revision: str = '0010_sites'
down_revision: str | Sequence[str] | None = '0009_report_schedules'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON_DOC = sa.JSON(none_as_null=True).with_variant(postgresql.JSONB(none_as_null=True), 'postgresql')


def upgrade() -> None:
    """Upgrade schema."""
    with op.batch_alter_table('cameras') as batch:
        batch.add_column(sa.Column('site', sa.String(length=64), nullable=True))
        batch.create_index('ix_cameras_site', ['site'], unique=False)
    with op.batch_alter_table('users') as batch:
        batch.add_column(sa.Column('sites', JSON_DOC, nullable=True))


def downgrade() -> None:
    """Downgrade schema.

    Plain ALTER TABLE … DROP COLUMN (SQLite 3.35+ does it in place): a batch rewrite of `cameras` would
    drop the table that `lpr_records` refers to, which SQLite refuses with foreign keys on.
    """
    op.drop_column('users', 'sites')
    op.drop_index('ix_cameras_site', table_name='cameras')
    op.drop_column('cameras', 'site')
