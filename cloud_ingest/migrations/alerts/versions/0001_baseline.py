"""Alerts, care flags, last seen, visits, and self-healing's lease and ledger.

Revision ID: alerts_0001
"""

import sqlalchemy as sa
from alembic import op

revision = "alerts_0001"
down_revision = None


def upgrade() -> None:
    op.create_table(
        "alerts",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("subject", sa.Text, nullable=False),  # device_id, person_id or site_id
        sa.Column("site_id", sa.Text),
        sa.Column("device_id", sa.Text),
        sa.Column("person_id", sa.Text),
        sa.Column("area_path", sa.Text, nullable=False, server_default=""),  # '' = unplaced
        sa.Column("opened_at", sa.BigInteger, nullable=False),
        sa.Column("last_seen_at", sa.BigInteger, nullable=False),
        sa.Column("count", sa.Integer, nullable=False, server_default="1"),
        sa.Column("state", sa.Text, nullable=False, server_default="open"),
        sa.Column("acked_at", sa.BigInteger),
        sa.Column("acked_by", sa.Text),
        sa.Column("cleared_at", sa.BigInteger),
        sa.Column("cleared_by", sa.Text),
        sa.Column("closed_by", sa.Text),  # the username when cleared_by = 'user'
        sa.Column("detail_zh", sa.Text, nullable=False, server_default=""),
        sa.Column("detail_en", sa.Text, nullable=False, server_default=""),
        sa.CheckConstraint("state IN ('open', 'acknowledged', 'closed')"),
        sa.CheckConstraint("cleared_by IN ('auto', 'user')"),
        if_not_exists=True,
    )
    op.create_index(
        "alerts_one_open",
        "alerts",
        ["kind", "subject"],
        unique=True,
        sqlite_where=sa.text("state != 'closed'"),
        postgresql_where=sa.text("state != 'closed'"),
        if_not_exists=True,
    )
    op.create_index("alerts_area", "alerts", ["area_path", "state"], if_not_exists=True)
    op.create_table(
        "person_flags",
        sa.Column("person_id", sa.Text, primary_key=True),
        sa.Column("flag", sa.Text, primary_key=True),
        sa.Column("flagged_at", sa.BigInteger, nullable=False),  # full grace before a visit
        if_not_exists=True,
    )
    op.create_table(
        "last_seen",
        sa.Column("person_id", sa.Text, primary_key=True),
        sa.Column("ts_us", sa.BigInteger, nullable=False),  # latest check-in or meal
        sa.Column("site_id", sa.Text, nullable=False),
        sa.Column("device_id", sa.Text, nullable=False),
        sa.Column("kind", sa.Text, nullable=False),
        if_not_exists=True,
    )
    op.create_table(
        "visits",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("person_id", sa.Text, nullable=False),
        sa.Column("area_path", sa.Text, nullable=False),  # the person's area when visited
        sa.Column("visited_at", sa.BigInteger, nullable=False),
        sa.Column("recorded_by", sa.Text, nullable=False),
        sa.Column("note", sa.Text, nullable=False, server_default=""),
        sa.Column("alert_id", sa.Integer, sa.ForeignKey("alerts.id")),
        if_not_exists=True,
    )
    op.create_index("visits_person", "visits", ["person_id", "visited_at"], if_not_exists=True)
    op.create_index("visits_area", "visits", ["area_path", "visited_at"], if_not_exists=True)
    op.create_table(
        "alerts_meta",
        sa.Column("key", sa.Text, primary_key=True),
        sa.Column("value", sa.BigInteger, nullable=False),
        if_not_exists=True,
    )
    op.create_table(
        "heal_lease",
        sa.Column("name", sa.Text, primary_key=True),
        sa.Column("holder", sa.Text, nullable=False),
        sa.Column("expires_us", sa.BigInteger, nullable=False),
        if_not_exists=True,
    )
    op.create_table(
        "heal_gaps",
        sa.Column("device_id", sa.Text, primary_key=True),
        sa.Column("first_seen_us", sa.BigInteger, nullable=False),
        sa.Column("missing", sa.BigInteger, nullable=False),  # seqs missing at the last round
        sa.Column("requests", sa.Integer, nullable=False, server_default="0"),
        sa.Column("requested_us", sa.BigInteger),  # the last request
        sa.Column("alerted", sa.Integer, nullable=False, server_default="0"),
        if_not_exists=True,
    )
    op.create_table(
        "heal_conflicts",
        sa.Column("device_id", sa.Text, primary_key=True),
        sa.Column("seq", sa.BigInteger, primary_key=True),
        sa.Column("source", sa.Text, primary_key=True),
        sa.Column("seen_us", sa.BigInteger, nullable=False),
        if_not_exists=True,
    )


def downgrade() -> None:
    for table in (
        "heal_conflicts",
        "heal_gaps",
        "heal_lease",
        "alerts_meta",
        "visits",
        "last_seen",
        "person_flags",
        "alerts",
    ):
        op.drop_table(table)
