"""Notifications: targets per area, the delivery queue, and the log of every attempt.

The cursor (`alerts_meta` key `notify_cursor`) starts at the newest alert already there: alerts
raised before notifications existed are not sent; every later one is.

Revision ID: alerts_0002
"""

import sqlalchemy as sa
from alembic import op

revision = "alerts_0002"
down_revision = "alerts_0001"


def upgrade() -> None:
    op.create_table(
        "notify_targets",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("area_path", sa.Text, nullable=False),  # an area or a site's leaf path
        sa.Column("channel", sa.Text, nullable=False),
        sa.Column("address", sa.Text, nullable=False),  # the robot's URL, or e-mail addresses
        sa.Column("secret", sa.Text),  # the robot's signing secret (DingTalk "加签")
        sa.Column("kinds", sa.Text, nullable=False, server_default=""),  # '' = every kind
        sa.Column("label", sa.Text, nullable=False, server_default=""),
        sa.Column("created_by", sa.Text, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.CheckConstraint("channel IN ('webhook', 'email')"),
    )
    op.create_index("notify_targets_area", "notify_targets", ["area_path"])
    op.create_table(
        "notify_deliveries",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("alert_id", sa.Integer),  # NULL: a test message from the console
        sa.Column("target_id", sa.Integer, nullable=False),
        sa.Column("area_path", sa.Text, nullable=False),  # the target's, for who sees the log
        sa.Column("channel", sa.Text, nullable=False),
        sa.Column("address", sa.Text, nullable=False),  # as it was: the target may go
        sa.Column("subject", sa.Text, nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("status", sa.Text, nullable=False, server_default="pending"),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("next_at", sa.BigInteger, nullable=False),
        sa.Column("claimed_by", sa.Text),
        sa.Column("claim_until", sa.BigInteger),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("done_at", sa.BigInteger),
        sa.CheckConstraint("status IN ('pending', 'sent', 'failed')"),
    )
    op.create_index(
        "notify_deliveries_once", "notify_deliveries", ["alert_id", "target_id"], unique=True
    )
    op.create_index("notify_deliveries_due", "notify_deliveries", ["status", "next_at"])
    op.create_table(
        "notify_attempts",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("delivery_id", sa.Integer, nullable=False),
        sa.Column("alert_id", sa.Integer),
        sa.Column("target_id", sa.Integer, nullable=False),
        sa.Column("area_path", sa.Text, nullable=False),
        sa.Column("channel", sa.Text, nullable=False),
        sa.Column("address", sa.Text, nullable=False),
        sa.Column("attempt", sa.Integer, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("error", sa.Text, nullable=False, server_default=""),
        sa.Column("holder", sa.Text, nullable=False),  # the console that made the attempt
        sa.Column("started_at", sa.BigInteger, nullable=False),
        sa.Column("finished_at", sa.BigInteger, nullable=False),
        sa.CheckConstraint("status IN ('sent', 'error')"),
    )
    op.create_index("notify_attempts_time", "notify_attempts", ["started_at"])
    op.execute(
        "INSERT INTO alerts_meta (key, value)"
        " SELECT 'notify_cursor', coalesce(max(id), 0) FROM alerts"
    )


def downgrade() -> None:
    op.execute("DELETE FROM alerts_meta WHERE key = 'notify_cursor'")
    for table in ("notify_attempts", "notify_deliveries", "notify_targets"):
        op.drop_table(table)
