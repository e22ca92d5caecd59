"""A user's page language (SPEC §13): kept on the account, chosen in the navigation bar.

One nullable column: no table is rewritten. NULL means "follow the browser, then DEFAULT_LANGUAGE".

Revision ID: 0007_user_language
Revises: 0006_alert_delivery
Create Date: 2026-12-03 14:50:00

"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = '0007_user_language'
down_revision: str | Sequence[str] | None = '0006_alert_delivery'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    with op.batch_alter_table('users') as batch:
        batch.add_column(sa.Column('language', sa.String(length=8), nullable=True))


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table('users') as batch:
        batch.drop_column('language')
