"""The `shape` digest (v1.3) in an index made before it: its rows have none.

Revision ID: conflicts_0002
"""

import sqlalchemy as sa
from alembic import op

revision = "conflicts_0002"
down_revision = "conflicts_0001"


def upgrade() -> None:
    columns = {c["name"] for c in sa.inspect(op.get_bind()).get_columns("seen")}
    if "shape" not in columns:
        op.add_column("seen", sa.Column("shape", sa.LargeBinary))


def downgrade() -> None:
    pass  # the column is part of the baseline since v1.3
