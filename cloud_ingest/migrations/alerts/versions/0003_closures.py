"""The closure calendar: days an area (and every site beneath it) is closed, which do not count
towards a flagged person's 'days unseen'. Local dates, both ends included;
no end day: closed until further notice.

Revision ID: alerts_0003
"""

import sqlalchemy as sa
from alembic import op

revision = "alerts_0003"
down_revision = "alerts_0002"


def upgrade() -> None:
    op.create_table(
        "closures",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("area_path", sa.Text, nullable=False),  # an area or a site's leaf path
        sa.Column("start_day", sa.Text, nullable=False),  # YYYY-MM-DD, local
        sa.Column("end_day", sa.Text),  # YYYY-MM-DD, local, included; NULL: until further notice
        sa.Column("reason", sa.Text, nullable=False, server_default=""),
        sa.Column("created_by", sa.Text, nullable=False),
        sa.Column("created_us", sa.BigInteger, nullable=False),
        sa.CheckConstraint("end_day IS NULL OR start_day <= end_day"),
    )
    op.create_index("closures_area", "closures", ["area_path"])


def downgrade() -> None:
    op.drop_table("closures")
