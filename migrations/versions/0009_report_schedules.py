"""Scheduled reports (SPEC §12 "Reports"): daily or weekly summaries e-mailed to the addresses an admin
set on /reports. One new table.

Revision ID: 0009_report_schedules
Revises: 0008_analytics_counts
Create Date: 2026-12-03 18:00:00

"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

# revision identifiers, used by Alembic.
revision: str = '0009_report_schedules'
down_revision: str | Sequence[str] | None = '0008_analytics_counts'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON_DOC = sa.JSON(none_as_null=True).with_variant(postgresql.JSONB(none_as_null=True), 'postgresql')


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        'report_schedules',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('frequency', sa.String(length=8), nullable=False),
        sa.Column('recipients', JSON_DOC, nullable=False),
        sa.Column('language', sa.String(length=8), nullable=False),
        sa.Column('camera_id', sa.String(length=64), nullable=True),
        sa.Column('created_by', sa.Integer(), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('last_period_end', sa.Date(), nullable=True),
        sa.Column('last_sent_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('lease_until', sa.DateTime(timezone=True), nullable=True),
        sa.Column('last_error', sa.String(length=255), nullable=True),
        sa.CheckConstraint("frequency IN ('daily', 'weekly')", name=op.f('ck_report_schedules_frequency')),
        sa.CheckConstraint("language IN ('th', 'en')", name=op.f('ck_report_schedules_language')),
        sa.ForeignKeyConstraint(['created_by'], ['users.id'], name=op.f('fk_report_schedules_created_by_users'),
                                ondelete='SET NULL'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_report_schedules')),
    )


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_table('report_schedules')
