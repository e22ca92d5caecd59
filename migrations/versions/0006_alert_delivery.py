"""Alerts that reach people (SPEC §11): rules, the delivery outbox and its attempts, channel settings,
an alert's repeat count, and a camera's open camera_offline alert.

Only new tables and nullable or defaulted columns: no table is rewritten.

Revision ID: 0006_alert_delivery
Revises: 0005_vehicles
Create Date: 2026-12-02 22:40:00

"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

# revision identifiers, used by Alembic.
revision: str = '0006_alert_delivery'
down_revision: str | Sequence[str] | None = '0005_vehicles'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
JsonDoc = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
TRIGGERS = "trigger IN ('blacklist', 'not_on_list', 'overstay', 'camera_offline')"


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        'alert_rules',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('trigger', sa.String(length=16), nullable=False),
        sa.Column('categories', JsonDoc, nullable=False),
        sa.Column('cameras', JsonDoc, nullable=False),
        sa.Column('hours', sa.String(length=11), nullable=True),
        sa.Column('channels', JsonDoc, nullable=False),
        sa.Column('escalate_after_minutes', sa.Integer(), nullable=True),
        sa.Column('escalate_to', JsonDoc, nullable=False),
        sa.Column('active', sa.Boolean(), server_default='1', nullable=False),
        sa.Column('description', sa.String(length=255), nullable=True),
        sa.Column('created_by', sa.Integer(), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(TRIGGERS, name=op.f('ck_alert_rules_trigger')),
        sa.ForeignKeyConstraint(['created_by'], ['users.id'], ondelete='SET NULL',
                                name=op.f('fk_alert_rules_created_by_users')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_alert_rules')),
    )
    op.create_table(
        'alert_deliveries',
        sa.Column('id', BigId, nullable=False),
        sa.Column('alert_id', BigId, nullable=False),
        sa.Column('rule_id', sa.Integer(), nullable=True),
        sa.Column('channel', sa.String(length=320), nullable=False),
        sa.Column('escalation', sa.Boolean(), server_default='0', nullable=False),
        sa.Column('status', sa.String(length=16), server_default='pending', nullable=False),
        sa.Column('attempts', sa.Integer(), server_default='0', nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('next_attempt_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('last_attempt_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('delivered_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('last_error', sa.String(length=255), nullable=True),
        sa.ForeignKeyConstraint(['alert_id'], ['alerts.id'], ondelete='CASCADE',
                                name=op.f('fk_alert_deliveries_alert_id_alerts')),
        sa.ForeignKeyConstraint(['rule_id'], ['alert_rules.id'], ondelete='SET NULL',
                                name=op.f('fk_alert_deliveries_rule_id_alert_rules')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_alert_deliveries')),
    )
    with op.batch_alter_table('alert_deliveries', schema=None) as batch_op:
        batch_op.create_index('ix_alert_deliveries_due', ['status', 'next_attempt_at'], unique=False)
        batch_op.create_index('ix_alert_deliveries_alert', ['alert_id', 'id'], unique=False)
    op.create_table(
        'alert_attempts',
        sa.Column('id', BigId, nullable=False),
        sa.Column('delivery_id', BigId, nullable=False),
        sa.Column('alert_id', BigId, nullable=False),
        sa.Column('channel', sa.String(length=320), nullable=False),
        sa.Column('at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('ok', sa.Boolean(), nullable=False),
        sa.Column('error', sa.String(length=255), nullable=True),
        sa.ForeignKeyConstraint(['alert_id'], ['alerts.id'], ondelete='CASCADE',
                                name=op.f('fk_alert_attempts_alert_id_alerts')),
        sa.ForeignKeyConstraint(['delivery_id'], ['alert_deliveries.id'], ondelete='CASCADE',
                                name=op.f('fk_alert_attempts_delivery_id_alert_deliveries')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_alert_attempts')),
    )
    with op.batch_alter_table('alert_attempts', schema=None) as batch_op:
        batch_op.create_index('ix_alert_attempts_alert', ['alert_id', 'id'], unique=False)
        batch_op.create_index('ix_alert_attempts_at', ['at'], unique=False)
    op.create_table(
        'channel_settings',
        sa.Column('name', sa.String(length=32), nullable=False),
        sa.Column('value', sa.Text(), nullable=False),
        sa.Column('updated_by', sa.Integer(), nullable=True),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['updated_by'], ['users.id'], ondelete='SET NULL',
                                name=op.f('fk_channel_settings_updated_by_users')),
        sa.PrimaryKeyConstraint('name', name=op.f('pk_channel_settings')),
    )
    with op.batch_alter_table('alerts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('repeat_count', sa.Integer(), server_default='1', nullable=False))
        batch_op.add_column(sa.Column('last_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index('ix_alerts_repeat', ['camera_id', 'plate', 'id'], unique=False)
    with op.batch_alter_table('cameras', schema=None) as batch_op:
        batch_op.add_column(sa.Column('offline_alert_id', sa.BigInteger(), nullable=True))


def downgrade() -> None:
    """Downgrade schema (columns dropped in place, as in 0005)."""
    op.drop_table('alert_attempts')
    op.drop_table('alert_deliveries')
    op.drop_table('alert_rules')
    op.drop_table('channel_settings')
    op.drop_index('ix_alerts_repeat', table_name='alerts')
    op.drop_column('alerts', 'last_at')
    op.drop_column('alerts', 'repeat_count')
    op.drop_column('cameras', 'offline_alert_id')
