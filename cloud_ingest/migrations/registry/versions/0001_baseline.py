"""Sites, devices, people (with role), cards, card history, enrol windows and captures, and the
version counter every process watches.

Revision ID: registry_0001
"""

import sqlalchemy as sa
from alembic import op

revision = "registry_0001"
down_revision = None


def upgrade() -> None:
    op.create_table(
        "sites",
        sa.Column("site_id", sa.Text, primary_key=True),
        sa.Column("name_zh", sa.Text, nullable=False),
        sa.Column("name_en", sa.Text, nullable=False, server_default=""),
        sa.Column("tz", sa.Text, nullable=False, server_default="Asia/Shanghai"),
        sa.Column("capacity", sa.Integer),
        sa.Column("opening", sa.Text, nullable=False, server_default="07:00"),
        sa.Column("closing", sa.Text, nullable=False, server_default="18:00"),
        sa.Column("breakfast", sa.Text),
        sa.Column("lunch", sa.Text),
        sa.Column("dinner", sa.Text),
        if_not_exists=True,
    )
    op.create_table(
        "devices",
        sa.Column("device_id", sa.Text, primary_key=True),
        sa.Column("site_id", sa.Text, sa.ForeignKey("sites.site_id"), nullable=False),
        sa.Column("mode", sa.Text, nullable=False),
        sa.Column("debounce_s", sa.Float, nullable=False, server_default="10"),
        sa.CheckConstraint("mode IN ('entrance', 'canteen')"),
        if_not_exists=True,
    )
    op.create_index("devices_site", "devices", ["site_id"], if_not_exists=True)
    op.create_table(
        "people",
        sa.Column("person_id", sa.Text, primary_key=True),
        sa.Column("display_name", sa.Text, nullable=False),
        # The person's home courtyard: their name and cards go only into this site's roster.
        sa.Column("site_id", sa.Text, sa.ForeignKey("sites.site_id"), nullable=False),
        sa.Column("role", sa.Text, nullable=False, server_default="elder"),
        sa.CheckConstraint("role IN ('elder', 'staff')"),
        if_not_exists=True,
    )
    op.create_index("people_site", "people", ["site_id"], if_not_exists=True)
    op.create_table(
        "cards",
        sa.Column("card_uid", sa.Text, primary_key=True),
        sa.Column("person_id", sa.Text, sa.ForeignKey("people.person_id"), nullable=False),
        sa.Column("active", sa.Integer, nullable=False, server_default="1"),
        if_not_exists=True,
    )
    op.create_index("cards_person", "cards", ["person_id"], if_not_exists=True)
    op.create_table(
        "meta",
        sa.Column("key", sa.Text, primary_key=True),
        sa.Column("value", sa.BigInteger, nullable=False),
        if_not_exists=True,
    )
    op.execute("INSERT INTO meta (key, value) VALUES ('version', 0) ON CONFLICT DO NOTHING")
    op.create_table(
        "card_assignments",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("card_uid", sa.Text, nullable=False),
        sa.Column("person_id", sa.Text, sa.ForeignKey("people.person_id"), nullable=False),
        sa.Column("valid_from", sa.BigInteger),  # UTC µs; NULL = held since before history
        sa.Column("valid_to", sa.BigInteger),  # UTC µs, exclusive; NULL = holds it now
        if_not_exists=True,
    )
    op.create_index(
        "card_assignments_card", "card_assignments", ["card_uid", "valid_from"], if_not_exists=True
    )
    op.create_index(
        "card_assignments_person", "card_assignments", ["person_id"], if_not_exists=True
    )
    op.create_index(
        "card_assignments_open",
        "card_assignments",
        ["card_uid"],
        unique=True,
        sqlite_where=sa.text("valid_to IS NULL"),
        postgresql_where=sa.text("valid_to IS NULL"),
        if_not_exists=True,
    )
    op.create_table(
        "enrol_windows",
        sa.Column("device_id", sa.Text, sa.ForeignKey("devices.device_id"), primary_key=True),
        sa.Column("started_us", sa.BigInteger, nullable=False),
        sa.Column("until_us", sa.BigInteger, nullable=False),
        sa.Column("started_by", sa.Text, nullable=False),
        if_not_exists=True,
    )
    op.create_table(
        "enrol_captures",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("event_id", sa.Text, nullable=False, unique=True),  # a redelivery: once
        sa.Column("device_id", sa.Text, nullable=False),
        sa.Column("card_uid", sa.Text, nullable=False),
        sa.Column("ts_us", sa.BigInteger, nullable=False),
        sa.Column("captured_us", sa.BigInteger, nullable=False),
        if_not_exists=True,
    )
    op.create_index(
        "enrol_captures_device", "enrol_captures", ["device_id", "ts_us"], if_not_exists=True
    )


def downgrade() -> None:
    for table in (
        "enrol_captures",
        "enrol_windows",
        "card_assignments",
        "meta",
        "cards",
        "people",
        "devices",
        "sites",
    ):
        op.drop_table(table)
