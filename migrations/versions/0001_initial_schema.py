"""Initial schema: cameras, records, blacklist, detections, health, users, tokens, audit.

Revision ID: 0001
Revises: 
Create Date: 2026-11-29 01:38:36.877957

"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

# revision identifiers, used by Alembic.
revision: str = '0001'
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table('blacklist_plates',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('license_plate_text', sa.String(length=64), nullable=False),
    sa.Column('plate_normalized', sa.String(length=32), nullable=False),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.Column('category', sa.String(length=16), server_default='other', nullable=False),
    sa.Column('added_by', sa.String(length=128), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('active', sa.Boolean(), server_default='1', nullable=False),
    sa.CheckConstraint("category IN ('stolen', 'wanted', 'vip', 'watch', 'other')", name=op.f('ck_blacklist_plates_category')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_blacklist_plates'))
    )
    with op.batch_alter_table('blacklist_plates', schema=None) as batch_op:
        batch_op.create_index('ix_blacklist_plates_plate_normalized', ['plate_normalized'], unique=False)

    op.create_table('cameras',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=128), nullable=True),
    sa.Column('location', sa.String(length=255), nullable=True),
    sa.Column('latitude', sa.Float(), nullable=True),
    sa.Column('longitude', sa.Float(), nullable=True),
    sa.Column('hostname', sa.String(length=255), nullable=True),
    sa.Column('version', sa.String(length=64), nullable=True),
    sa.Column('token_hash', sa.String(length=64), nullable=True),
    sa.Column('first_seen', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_seen', sa.DateTime(timezone=True), nullable=True),
    sa.Column('online', sa.Boolean(), server_default='0', nullable=False),
    sa.Column('health_status', sa.String(length=8), nullable=True),
    sa.Column('health_message', sa.Text(), nullable=True),
    sa.Column('health_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_cameras')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_cameras_token_hash'))
    )
    op.create_table('users',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('username', sa.String(length=64), nullable=False),
    sa.Column('password_hash', sa.String(length=128), nullable=False),
    sa.Column('role', sa.String(length=16), nullable=False),
    sa.Column('active', sa.Boolean(), server_default='1', nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_login_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_users')),
    sa.UniqueConstraint('username', name=op.f('uq_users_username'))
    )
    op.create_table('api_tokens',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=128), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('scope', sa.String(length=16), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_used_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_api_tokens_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_api_tokens')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_api_tokens_token_hash'))
    )
    with op.batch_alter_table('api_tokens', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_api_tokens_user_id'), ['user_id'], unique=False)

    op.create_table('audit_log',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=True),
    sa.Column('username', sa.String(length=64), nullable=True),
    sa.Column('action', sa.String(length=64), nullable=False),
    sa.Column('target', sa.String(length=255), nullable=True),
    sa.Column('detail', sa.JSON().with_variant(postgresql.JSONB(), 'postgresql'), nullable=True),
    sa.Column('ip', sa.String(length=64), nullable=True),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_audit_log_user_id_users'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_log'))
    )
    with op.batch_alter_table('audit_log', schema=None) as batch_op:
        batch_op.create_index('ix_audit_log_at', ['at'], unique=False)

    op.create_table('health_reports',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('camera_id', sa.String(length=64), nullable=False),
    sa.Column('component', sa.String(length=64), nullable=True),
    sa.Column('status', sa.String(length=8), nullable=False),
    sa.Column('message', sa.Text(), nullable=True),
    sa.Column('system_info', sa.JSON().with_variant(postgresql.JSONB(), 'postgresql'), nullable=True),
    sa.Column('reported_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['camera_id'], ['cameras.id'], name=op.f('fk_health_reports_camera_id_cameras')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_health_reports'))
    )
    with op.batch_alter_table('health_reports', schema=None) as batch_op:
        batch_op.create_index('ix_health_reports_camera_received', ['camera_id', 'received_at'], unique=False)

    op.create_table('lpr_records',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('camera_id', sa.String(length=64), nullable=False),
    sa.Column('event_id', sa.String(length=128), nullable=True),
    sa.Column('plate_number', sa.String(length=64), nullable=False),
    sa.Column('plate_normalized', sa.String(length=32), nullable=False),
    sa.Column('province', sa.String(length=64), nullable=True),
    sa.Column('confidence', sa.Float(), nullable=True),
    sa.Column('captured_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('location', sa.String(length=255), nullable=True),
    sa.Column('latitude', sa.Float(), nullable=True),
    sa.Column('longitude', sa.Float(), nullable=True),
    sa.Column('vehicle_type', sa.String(length=64), nullable=True),
    sa.Column('vehicle_color', sa.String(length=64), nullable=True),
    sa.Column('direction', sa.String(length=32), nullable=True),
    sa.Column('image_path', sa.String(length=255), nullable=True),
    sa.Column('thumbnail_path', sa.String(length=255), nullable=True),
    sa.Column('image_sha256', sa.String(length=64), nullable=True),
    sa.Column('image_bytes', sa.Integer(), nullable=True),
    sa.Column('blacklisted', sa.Boolean(), server_default='0', nullable=False),
    sa.Column('extra', sa.JSON().with_variant(postgresql.JSONB(), 'postgresql'), nullable=True),
    sa.ForeignKeyConstraint(['camera_id'], ['cameras.id'], name=op.f('fk_lpr_records_camera_id_cameras')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_lpr_records')),
    sa.UniqueConstraint('camera_id', 'event_id', name='uq_lpr_records_camera_event')
    )
    with op.batch_alter_table('lpr_records', schema=None) as batch_op:
        batch_op.create_index('ix_lpr_records_camera_received', ['camera_id', 'received_at'], unique=False)
        batch_op.create_index('ix_lpr_records_plate_prefix', ['plate_normalized'], unique=False, postgresql_ops={'plate_normalized': 'varchar_pattern_ops'})
        batch_op.create_index('ix_lpr_records_received_at', ['received_at'], unique=False)

    if op.get_bind().dialect.name == "postgresql":
        # Trigram index for "contains" plate searches, Thai included (PostgreSQL only).
        op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        op.create_index('ix_lpr_records_plate_trgm', 'lpr_records', ['plate_normalized'], unique=False,
                        postgresql_using='gin', postgresql_ops={'plate_normalized': 'gin_trgm_ops'})

    op.create_table('blacklist_detections',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('record_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('entry_id', sa.Integer(), nullable=False),
    sa.Column('match_type', sa.String(length=16), nullable=False),
    sa.Column('detected_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('acknowledged_by', sa.Integer(), nullable=True),
    sa.Column('acknowledged_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['acknowledged_by'], ['users.id'], name=op.f('fk_blacklist_detections_acknowledged_by_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['entry_id'], ['blacklist_plates.id'], name=op.f('fk_blacklist_detections_entry_id_blacklist_plates'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['record_id'], ['lpr_records.id'], name=op.f('fk_blacklist_detections_record_id_lpr_records'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_blacklist_detections'))
    )
    with op.batch_alter_table('blacklist_detections', schema=None) as batch_op:
        batch_op.create_index('ix_blacklist_detections_detected_at', ['detected_at'], unique=False)



def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table('blacklist_detections', schema=None) as batch_op:
        batch_op.drop_index('ix_blacklist_detections_detected_at')

    op.drop_table('blacklist_detections')
    with op.batch_alter_table('lpr_records', schema=None) as batch_op:
        batch_op.drop_index('ix_lpr_records_received_at')
        batch_op.drop_index('ix_lpr_records_plate_prefix', postgresql_ops={'plate_normalized': 'varchar_pattern_ops'})
        batch_op.drop_index('ix_lpr_records_camera_received')

    if op.get_bind().dialect.name == "postgresql":
        op.drop_index('ix_lpr_records_plate_trgm', table_name='lpr_records')
    op.drop_table('lpr_records')
    with op.batch_alter_table('health_reports', schema=None) as batch_op:
        batch_op.drop_index('ix_health_reports_camera_received')

    op.drop_table('health_reports')
    with op.batch_alter_table('audit_log', schema=None) as batch_op:
        batch_op.drop_index('ix_audit_log_at')

    op.drop_table('audit_log')
    with op.batch_alter_table('api_tokens', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_api_tokens_user_id'))

    op.drop_table('api_tokens')
    op.drop_table('users')
    op.drop_table('cameras')
    with op.batch_alter_table('blacklist_plates', schema=None) as batch_op:
        batch_op.drop_index('ix_blacklist_plates_plate_normalized')

    op.drop_table('blacklist_plates')
