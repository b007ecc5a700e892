"""Adopt registry files from the first releases, which the baseline finds without staff roles
and without card history: add the role column (everyone an elder) and give each active card an
open assignment from an unknown start. On any newer registry both steps find nothing to do.

Revision ID: registry_0002
"""

import sqlalchemy as sa
from alembic import op

revision = "registry_0002"
down_revision = "registry_0001"


def upgrade() -> None:
    people = {c["name"] for c in sa.inspect(op.get_bind()).get_columns("people")}
    if "role" not in people:
        op.add_column(
            "people",
            sa.Column(
                "role",
                sa.Text,
                sa.CheckConstraint("role IN ('elder', 'staff')"),
                nullable=False,
                server_default="elder",
            ),
        )
    # Every change reconciles card history, so only a file older than it has active cards
    # without an open assignment.
    op.execute(
        "INSERT INTO card_assignments (card_uid, person_id, valid_from, valid_to) "
        "SELECT c.card_uid, c.person_id, NULL, NULL FROM cards c WHERE c.active = 1 "
        "AND NOT EXISTS (SELECT 1 FROM card_assignments a "
        "WHERE a.card_uid = c.card_uid AND a.valid_to IS NULL)"
    )


def downgrade() -> None:
    pass  # nothing to undo: the baseline's downgrade drops these tables
