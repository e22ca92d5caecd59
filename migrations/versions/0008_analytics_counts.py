"""Analytics from pre-aggregated counts (SPEC §12 "Dashboard"): reads per camera and UTC hour, per camera
and day, per UTC hour; unique plates per day, the plates of each day and how many days after their
previous read; reads per province and day (days in TIMEZONE).

Only new tables: no table is rewritten. They are left empty here: `flask lpr rebuild-analytics` fills
them from lpr_records (README "Analytics"). Filling them in the migration would make the upgrade of a
large install as long as that rebuild (a few minutes at 5 M rows), and the days it counts depend on
TIMEZONE, a setting of the app the migration does not read. The ingest pipeline keeps them current from
the first read stored after the upgrade.

Revision ID: 0008_analytics_counts
Revises: 0007_user_language
Create Date: 2026-12-03 16:00:00

"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = '0008_analytics_counts'
down_revision: str | Sequence[str] | None = '0007_user_language'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        'analytics_hours',
        sa.Column('hour', sa.Integer(), nullable=False),
        sa.Column('camera_id', sa.String(length=64), nullable=False),
        sa.Column('reads', sa.Integer(), nullable=False),
        sa.Column('hits', sa.Integer(), nullable=False),
        sa.Column('confidence_sum', sa.Float(), nullable=False),
        sa.Column('confidence_reads', sa.Integer(), nullable=False),
        sa.Column('first_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('last_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('max_gap_seconds', sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint('hour', 'camera_id', name=op.f('pk_analytics_hours')),
    )
    with op.batch_alter_table('analytics_hours', schema=None) as batch_op:
        batch_op.create_index('ix_analytics_hours_camera_hour', ['camera_id', 'hour'], unique=False)
    op.create_table(
        'analytics_days',
        sa.Column('day', sa.Date(), nullable=False),
        sa.Column('unique_plates', sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint('day', name=op.f('pk_analytics_days')),
    )
    op.create_table(
        'analytics_plate_days',
        sa.Column('day', sa.Date(), nullable=False),
        sa.Column('plate_normalized', sa.String(length=32), nullable=False),
        sa.PrimaryKeyConstraint('day', 'plate_normalized', name=op.f('pk_analytics_plate_days')),
    )
    with op.batch_alter_table('analytics_plate_days', schema=None) as batch_op:
        batch_op.create_index('ix_analytics_plate_days_plate_day', ['plate_normalized', 'day'], unique=False)
    op.create_table(
        'analytics_day_gaps',
        sa.Column('day', sa.Date(), nullable=False),
        sa.Column('gap', sa.Integer(), nullable=False),
        sa.Column('plates', sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint('day', 'gap', name=op.f('pk_analytics_day_gaps')),
    )
    op.create_table(
        'analytics_camera_days',
        sa.Column('day', sa.Date(), nullable=False),
        sa.Column('camera_id', sa.String(length=64), nullable=False),
        sa.Column('reads', sa.Integer(), nullable=False),
        sa.Column('hits', sa.Integer(), nullable=False),
        sa.Column('confidence_sum', sa.Float(), nullable=False),
        sa.Column('confidence_reads', sa.Integer(), nullable=False),
        sa.Column('first_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('last_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('max_gap_seconds', sa.Float(), nullable=False),
        sa.Column('max_gap_end_at', sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint('day', 'camera_id', name=op.f('pk_analytics_camera_days')),
    )
    with op.batch_alter_table('analytics_camera_days', schema=None) as batch_op:
        batch_op.create_index('ix_analytics_camera_days_camera_day', ['camera_id', 'day'], unique=False)
    op.create_table(
        'analytics_hour_totals',
        sa.Column('hour', sa.Integer(), nullable=False),
        sa.Column('reads', sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint('hour', name=op.f('pk_analytics_hour_totals')),
    )
    op.create_table(
        'analytics_province_days',
        sa.Column('day', sa.Date(), nullable=False),
        sa.Column('province_code', sa.String(length=8), nullable=False),
        sa.Column('reads', sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint('day', 'province_code', name=op.f('pk_analytics_province_days')),
    )


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_table('analytics_province_days')
    op.drop_table('analytics_hour_totals')
    op.drop_index('ix_analytics_camera_days_camera_day', table_name='analytics_camera_days')
    op.drop_table('analytics_camera_days')
    op.drop_table('analytics_day_gaps')
    op.drop_index('ix_analytics_plate_days_plate_day', table_name='analytics_plate_days')
    op.drop_table('analytics_plate_days')
    op.drop_table('analytics_days')
    op.drop_index('ix_analytics_hours_camera_hour', table_name='analytics_hours')
    op.drop_table('analytics_hours')
