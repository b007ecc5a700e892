"""Dead letters and the overflow count, as first released.

Revision ID: deadletters_0001
"""

import sqlalchemy as sa
from alembic import op

revision = "deadletters_0001"
down_revision = None


def upgrade() -> None:
    op.create_table(
        "dead_letters",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("received_us", sa.BigInteger, nullable=False),
        sa.Column("topic", sa.Text, nullable=False),
        sa.Column("payload", sa.LargeBinary, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("detail", sa.Text, nullable=False),
        sa.Column("device", sa.Text, nullable=False, server_default=""),
        sa.Column("payload_len", sa.Integer),
        sa.Column("payload_sha256", sa.Text),
        if_not_exists=True,
    )
    op.create_index("dead_letters_reason", "dead_letters", ["reason", "id"], if_not_exists=True)
    op.create_index("dead_letters_device", "dead_letters", ["device", "id"], if_not_exists=True)
    op.create_table(
        "dead_letter_overflow",
        sa.Column("device", sa.Text, primary_key=True),
        sa.Column("reason", sa.Text, primary_key=True),
        sa.Column("count", sa.BigInteger, nullable=False),
        sa.Column("bytes", sa.BigInteger, nullable=False),
        sa.Column("first_us", sa.BigInteger, nullable=False),
        sa.Column("last_us", sa.BigInteger, nullable=False),
        if_not_exists=True,
    )


def downgrade() -> None:
    op.drop_table("dead_letter_overflow")
    op.drop_table("dead_letters")
