"""A hand meal (补录) the kiosk's own record of the same meal replaced: which tap, and when.

Revision ID: console_0004
"""

import sqlalchemy as sa
from alembic import op

revision = "console_0004"
down_revision = "console_0003"


def upgrade() -> None:
    op.add_column("hand_meals", sa.Column("replaced_by", sa.Text, nullable=True))  # device#seq
    op.add_column("hand_meals", sa.Column("replaced_us", sa.BigInteger, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("hand_meals") as batch:
        batch.drop_column("replaced_us")
        batch.drop_column("replaced_by")
