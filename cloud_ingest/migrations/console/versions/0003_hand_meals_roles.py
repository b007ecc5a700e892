"""Meals recorded by hand in the console (补录, `hand_meals`), and two more roles a grant may
give: canteen staff (`staff`) and county finance (`finance`).

The grants CHECK is replaced by one named `grants_role`: in place on PostgreSQL (ALTER TABLE), by
rebuilding the table on SQLite, which cannot alter a CHECK (batch mode copies the rows over; the
baseline's CHECK had no name there, and batch mode leaves an unnamed reflected CHECK behind).

Revision ID: console_0003
"""

import warnings

import sqlalchemy as sa
from alembic import op

revision = "console_0003"
down_revision = "console_0002"

ROLES = ("viewer", "manager", "admin", "staff", "finance")
OLD_ROLES = ("viewer", "manager", "admin")


def _role_check(roles: tuple[str, ...]) -> str:
    return "role IN (" + ", ".join(f"'{r}'" for r in roles) + ")"


def _replace_role_check(roles: tuple[str, ...]) -> None:
    """Drop the grants table's CHECK (its name as the database reports it, if it has one) and
    add `grants_role` allowing `roles`; the rows stay."""
    found = sa.inspect(op.get_bind()).get_check_constraints("grants")
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Unnamed CHECK constraint")  # dropped, as meant
        with op.batch_alter_table("grants") as batch:
            for name in [c["name"] for c in found if c["name"]]:
                batch.drop_constraint(name, type_="check")
            batch.create_check_constraint("grants_role", _role_check(roles))


def upgrade() -> None:
    _replace_role_check(ROLES)
    op.create_table(
        "hand_meals",
        sa.Column("seq", sa.Integer, primary_key=True),  # the point's seq on device console:hand
        sa.Column("event_id", sa.Text, nullable=False, unique=True),
        sa.Column("person_id", sa.Text, nullable=False),
        sa.Column("site_id", sa.Text, nullable=False),
        sa.Column("day", sa.Text, nullable=False),  # the canteen's local date, 2026-11-30
        sa.Column("period", sa.Text, nullable=False),  # breakfast, lunch, dinner
        sa.Column("ts_us", sa.BigInteger, nullable=False),  # the point's time
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("recorded_by", sa.Text, nullable=False),
        sa.Column("recorded_us", sa.BigInteger, nullable=False),
        sa.UniqueConstraint("person_id", "day", "period", name="hand_meals_one_per_meal"),
        sqlite_autoincrement=True,  # a seq is never used twice, even after a refused point
    )
    op.create_index("hand_meals_site_day", "hand_meals", ["site_id", "day"])


def downgrade() -> None:
    op.drop_index("hand_meals_site_day", "hand_meals")
    op.drop_table("hand_meals")
    op.execute("DELETE FROM grants WHERE NOT (" + _role_check(OLD_ROLES) + ")")
    _replace_role_check(OLD_ROLES)
