"""A person's contact phone and address (well-being visits), kept apart from `people` so no
roster or people export ever carries them; shown only to roles with the contacts right.

Revision ID: registry_0003
"""

import sqlalchemy as sa
from alembic import op

revision = "registry_0003"
down_revision = "registry_0002"


def upgrade() -> None:
    op.create_table(
        "person_contacts",
        sa.Column(
            "person_id",
            sa.Text,
            sa.ForeignKey("people.person_id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("phone", sa.Text, nullable=False, server_default=""),
        sa.Column("address", sa.Text, nullable=False, server_default=""),
        sa.Column("updated_by", sa.Text, nullable=False),
        sa.Column("updated_us", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("person_contacts")
