"""Vehicles (SPEC §10): known plates and their groups, gate roles, visits, corrections, review, alerts.

The plate index of the records gains the record id (and, on PostgreSQL, INCLUDEs camera_id and
received_at), so a plate's page reads its newest sightings and its counts from the index: it is
rebuilt, which takes about a minute at 5 M rows (README "Upgrade").

Revision ID: 0005_vehicles
Revises: 0004_thai_plates
Create Date: 2026-12-02 17:00:00

"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

# revision identifiers, used by Alembic.
revision: str = '0005_vehicles'
down_revision: str | Sequence[str] | None = '0004_thai_plates'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
JsonDoc = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        'known_groups',
        sa.Column('name', sa.String(length=64), nullable=False),
        sa.Column('max_stay_minutes', sa.Integer(), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('name', name=op.f('pk_known_groups')),
    )
    op.create_table(
        'known_plates',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('plate', sa.String(length=64), nullable=False),
        sa.Column('plate_normalized', sa.String(length=32), nullable=False),
        sa.Column('province_code', sa.String(length=8), nullable=True),
        sa.Column('name', sa.String(length=128), nullable=True),
        sa.Column('notes', sa.Text(), nullable=True),
        sa.Column('group_name', sa.String(length=64), nullable=False),
        sa.Column('valid_from', sa.DateTime(timezone=True), nullable=True),
        sa.Column('valid_until', sa.DateTime(timezone=True), nullable=True),
        sa.Column('added_by', sa.String(length=64), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint('valid_until IS NULL OR valid_from IS NULL OR valid_until > valid_from',
                           name=op.f('ck_known_plates_valid_range')),
        sa.ForeignKeyConstraint(['group_name'], ['known_groups.name'], onupdate='CASCADE',
                                name=op.f('fk_known_plates_group_name_known_groups')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_known_plates')),
        sa.UniqueConstraint('plate_normalized', 'group_name', name='uq_known_plates_plate_group'),
    )
    op.create_table(
        'visits',
        sa.Column('id', BigId, nullable=False),
        sa.Column('plate_normalized', sa.String(length=32), nullable=False),
        sa.Column('province_code', sa.String(length=8), nullable=True),
        sa.Column('group_name', sa.String(length=64), nullable=True),
        sa.Column('entered_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('entry_camera_id', sa.String(length=64), nullable=True),
        sa.Column('entry_record_id', BigId, nullable=True),
        sa.Column('exited_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('exit_camera_id', sa.String(length=64), nullable=True),
        sa.Column('exit_record_id', BigId, nullable=True),
        sa.Column('overstay_alerted_at', sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(['entry_record_id'], ['lpr_records.id'], ondelete='SET NULL',
                                name=op.f('fk_visits_entry_record_id_lpr_records')),
        sa.ForeignKeyConstraint(['exit_record_id'], ['lpr_records.id'], ondelete='SET NULL',
                                name=op.f('fk_visits_exit_record_id_lpr_records')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_visits')),
    )
    with op.batch_alter_table('visits', schema=None) as batch_op:
        batch_op.create_index('uq_visits_open_plate', ['plate_normalized'], unique=True,
                              postgresql_where=sa.text('exited_at IS NULL'),
                              sqlite_where=sa.text('exited_at IS NULL'))
        batch_op.create_index('ix_visits_entered_at', ['entered_at'], unique=False)
        batch_op.create_index('ix_visits_exited_at', ['exited_at'], unique=False)
        batch_op.create_index('ix_visits_plate', ['plate_normalized', 'id'], unique=False)
        batch_op.create_index('ix_visits_entry_record', ['entry_record_id'], unique=False)
        batch_op.create_index('ix_visits_exit_record', ['exit_record_id'], unique=False)
    op.create_table(
        'alerts',
        sa.Column('id', BigId, nullable=False),
        sa.Column('trigger', sa.String(length=16), nullable=False),
        sa.Column('plate', sa.String(length=32), nullable=True),
        sa.Column('province_code', sa.String(length=8), nullable=True),
        sa.Column('camera_id', sa.String(length=64), nullable=True),
        sa.Column('record_id', BigId, nullable=True),
        sa.Column('detection_id', BigId, nullable=True),
        sa.Column('visit_id', BigId, nullable=True),
        sa.Column('detail', JsonDoc, nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('acknowledged_by', sa.Integer(), nullable=True),
        sa.Column('acknowledged_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('resolved_at', sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("trigger IN ('blacklist', 'not_on_list', 'overstay', 'camera_offline')",
                           name=op.f('ck_alerts_trigger')),
        sa.ForeignKeyConstraint(['acknowledged_by'], ['users.id'], ondelete='SET NULL',
                                name=op.f('fk_alerts_acknowledged_by_users')),
        sa.ForeignKeyConstraint(['detection_id'], ['blacklist_detections.id'], ondelete='CASCADE',
                                name=op.f('fk_alerts_detection_id_blacklist_detections')),
        sa.ForeignKeyConstraint(['record_id'], ['lpr_records.id'], ondelete='CASCADE',
                                name=op.f('fk_alerts_record_id_lpr_records')),
        sa.ForeignKeyConstraint(['visit_id'], ['visits.id'], ondelete='CASCADE',
                                name=op.f('fk_alerts_visit_id_visits')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_alerts')),
    )
    with op.batch_alter_table('alerts', schema=None) as batch_op:
        batch_op.create_index('ix_alerts_created_at', ['created_at'], unique=False)
        batch_op.create_index('ix_alerts_trigger_id', ['trigger', 'id'], unique=False)
        batch_op.create_index('ix_alerts_record', ['record_id'], unique=False)
        batch_op.create_index('ix_alerts_detection', ['detection_id'], unique=False)
    with op.batch_alter_table('cameras', schema=None) as batch_op:
        batch_op.add_column(sa.Column('role', sa.String(length=8), server_default='pass', nullable=False))
        batch_op.add_column(sa.Column('allow_group', sa.String(length=64), nullable=True))
    with op.batch_alter_table('lpr_records', schema=None) as batch_op:
        batch_op.add_column(sa.Column('plate_corrected', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('corrected_by', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('corrected_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('review_state', sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column('reviewed_by', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('reviewed_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.drop_index('ix_lpr_records_plate_prefix', postgresql_ops={'plate_normalized': 'varchar_pattern_ops'})
        batch_op.create_index('ix_lpr_records_plate_id', ['plate_normalized', 'id'], unique=False,
                              postgresql_ops={'plate_normalized': 'varchar_pattern_ops'},
                              postgresql_include=['camera_id', 'received_at'])
        batch_op.create_index('ix_lpr_records_review', ['id'], unique=False,
                              postgresql_where=sa.text("review_state = 'pending'"),
                              sqlite_where=sa.text("review_state = 'pending'"))
        batch_op.create_index('ix_lpr_records_corrected', ['camera_id', 'corrected_at'], unique=False,
                              postgresql_where=sa.text('corrected_at IS NOT NULL'),
                              sqlite_where=sa.text('corrected_at IS NOT NULL'))


def downgrade() -> None:
    """Downgrade schema.

    Columns are dropped with ALTER TABLE DROP COLUMN (SQLite 3.35 and later have it): batch mode
    would copy `cameras` and `lpr_records`, and SQLite refuses to drop a table other rows reference."""
    op.drop_table('alerts')
    op.drop_table('visits')
    op.drop_table('known_plates')
    op.drop_table('known_groups')
    op.drop_index('ix_lpr_records_corrected', table_name='lpr_records')
    op.drop_index('ix_lpr_records_review', table_name='lpr_records')
    op.drop_index('ix_lpr_records_plate_id', table_name='lpr_records')
    op.create_index('ix_lpr_records_plate_prefix', 'lpr_records', ['plate_normalized'], unique=False,
                    postgresql_ops={'plate_normalized': 'varchar_pattern_ops'})
    for column in ('reviewed_at', 'reviewed_by', 'review_state', 'corrected_at', 'corrected_by',
                   'plate_corrected'):
        op.drop_column('lpr_records', column)
    op.drop_column('cameras', 'allow_group')
    op.drop_column('cameras', 'role')
