"""The conflict index: every (device, seq) and event id stored, and the conflicts found.

Revision ID: conflicts_0001
"""

import sqlalchemy as sa
from alembic import op

revision = "conflicts_0001"
down_revision = None


def upgrade() -> None:
    op.create_table(
        "seen",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("device", sa.Text, nullable=False),
        sa.Column("seq", sa.BigInteger, nullable=False),
        sa.Column("event_id", sa.LargeBinary, nullable=False),
        sa.Column("digest", sa.LargeBinary, nullable=False),
        sa.Column("ts_us", sa.BigInteger, nullable=False),
        sa.Column("first_us", sa.BigInteger, nullable=False),
        sa.Column("shape", sa.LargeBinary),
        sa.UniqueConstraint("device", "seq"),
        sa.UniqueConstraint("event_id"),
        if_not_exists=True,
    )
    op.create_table(
        "conflicts",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("received_us", sa.BigInteger, nullable=False),
        sa.Column("device", sa.Text, nullable=False),
        sa.Column("seq", sa.BigInteger, nullable=False),
        sa.Column("event_id", sa.Text, nullable=False),
        sa.Column("ts_us", sa.BigInteger, nullable=False),
        sa.Column("rule", sa.Text, nullable=False),
        sa.Column("first_seq", sa.BigInteger, nullable=False),
        sa.Column("first_event_id", sa.Text, nullable=False),
        sa.Column("first_ts_us", sa.BigInteger, nullable=False),
        sa.Column("digest", sa.LargeBinary, nullable=False),
        sa.CheckConstraint("rule IN ('seq', 'event_id')"),
        sa.UniqueConstraint("device", "seq", "digest"),
        if_not_exists=True,
    )
    op.create_index("conflicts_by_device", "conflicts", ["device", "ts_us"], if_not_exists=True)


def downgrade() -> None:
    op.drop_table("conflicts")
    op.drop_table("seen")
