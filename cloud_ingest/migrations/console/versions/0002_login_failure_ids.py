"""Login failures get an id: a login withdraws or clears exactly the rows it counted (SQLite's
rowid did that before; PostgreSQL has none). The rows live 15 minutes; they are copied over.

Revision ID: console_0002
"""

import sqlalchemy as sa
from alembic import op

revision = "console_0002"
down_revision = "console_0001"


def upgrade() -> None:
    op.drop_index("login_failures_key", "login_failures")
    op.rename_table("login_failures", "login_failures_old")
    op.create_table(
        "login_failures",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("key", sa.Text, nullable=False),  # 'user:<name>' or 'ip:<address>'
        sa.Column("at", sa.Float, nullable=False),
    )
    op.execute("INSERT INTO login_failures (key, at) SELECT key, at FROM login_failures_old")
    op.drop_table("login_failures_old")
    op.create_index("login_failures_key", "login_failures", ["key", "at"])


def downgrade() -> None:
    op.drop_index("login_failures_key", "login_failures")
    op.rename_table("login_failures", "login_failures_new")
    op.create_table(
        "login_failures",
        sa.Column("key", sa.Text, nullable=False),
        sa.Column("at", sa.Float, nullable=False),
    )
    op.execute("INSERT INTO login_failures (key, at) SELECT key, at FROM login_failures_new")
    op.drop_table("login_failures_new")
    op.create_index("login_failures_key", "login_failures", ["key", "at"])
