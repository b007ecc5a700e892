"""Areas, users, grants, sessions, login failures, subsidy rates, the audit log with its
checkpoint, and the kiosks' pending erase commands.

Revision ID: console_0001
"""

import sqlalchemy as sa
from alembic import op

revision = "console_0001"
down_revision = None

# The audit log is append-only: rows change never, and go only behind a checkpoint (retention).
_SQLITE_TRIGGERS = (
    """CREATE TRIGGER IF NOT EXISTS audit_log_no_update BEFORE UPDATE ON audit_log
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END""",
    """CREATE TRIGGER IF NOT EXISTS audit_log_no_delete BEFORE DELETE ON audit_log
    WHEN OLD.seq > (SELECT coalesce(max(seq), 0) FROM audit_checkpoint)
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END""",
    """CREATE TRIGGER IF NOT EXISTS audit_checkpoint_no_update BEFORE UPDATE ON audit_checkpoint
    BEGIN SELECT RAISE(ABORT, 'checkpoints are append-only'); END""",
    """CREATE TRIGGER IF NOT EXISTS audit_checkpoint_no_delete BEFORE DELETE ON audit_checkpoint
    BEGIN SELECT RAISE(ABORT, 'checkpoints are append-only'); END""",
)
_POSTGRESQL_TRIGGERS = (
    """CREATE OR REPLACE FUNCTION audit_log_append_only() RETURNS trigger AS $$
    BEGIN
        IF TG_OP = 'UPDATE' OR OLD.seq > (SELECT coalesce(max(seq), 0) FROM audit_checkpoint)
        THEN RAISE EXCEPTION 'the audit log is append-only';
        END IF;
        RETURN OLD;
    END $$ LANGUAGE plpgsql""",
    """CREATE OR REPLACE FUNCTION audit_checkpoint_append_only() RETURNS trigger AS $$
    BEGIN RAISE EXCEPTION 'checkpoints are append-only'; END $$ LANGUAGE plpgsql""",
    """CREATE OR REPLACE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_append_only()""",
    """CREATE OR REPLACE TRIGGER audit_checkpoint_append_only
    BEFORE UPDATE OR DELETE ON audit_checkpoint
    FOR EACH ROW EXECUTE FUNCTION audit_checkpoint_append_only()""",
)


def upgrade() -> None:
    op.create_table(
        "areas",
        sa.Column("path", sa.Text, primary_key=True),  # 'dali/eryuan/xishan/xs-01'
        sa.Column("parent", sa.Text, nullable=False),  # '' for a prefecture
        sa.Column("level", sa.Text, nullable=False),
        sa.Column("name_zh", sa.Text, nullable=False),
        sa.Column("name_en", sa.Text, nullable=False),
        sa.Column("site_id", sa.Text, unique=True),  # last segment when level = 'site'
        sa.CheckConstraint("level IN ('prefecture', 'county', 'township', 'site')"),
        if_not_exists=True,
    )
    op.create_index("areas_parent", "areas", ["parent"], if_not_exists=True)
    op.create_table(
        "users",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("username", sa.Text, nullable=False, unique=True),
        sa.Column("password_hash", sa.Text, nullable=False),
        sa.Column("disabled", sa.Integer, nullable=False, server_default="0"),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("password_changed_at", sa.Float, nullable=False),
        if_not_exists=True,
    )
    op.create_table(
        "grants",
        sa.Column(
            "user_id",
            sa.Integer,
            sa.ForeignKey("users.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("area", sa.Text, primary_key=True),  # '' = everything
        sa.Column("role", sa.Text, nullable=False),
        sa.CheckConstraint("role IN ('viewer', 'manager', 'admin')"),
        if_not_exists=True,
    )
    op.create_table(
        "sessions",
        sa.Column("token_hash", sa.Text, primary_key=True),  # sha256 of the cookie value
        sa.Column(
            "user_id", sa.Integer, sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("last_seen", sa.Float, nullable=False),
        sa.Column("expires_at", sa.Float, nullable=False),
        sa.Column("client_ip", sa.Text, nullable=False, server_default=""),
        if_not_exists=True,
    )
    op.create_index("sessions_user", "sessions", ["user_id"], if_not_exists=True)
    op.create_table(
        "login_failures",
        sa.Column("key", sa.Text, nullable=False),  # 'user:<name>' or 'ip:<address>'
        sa.Column("at", sa.Float, nullable=False),
        if_not_exists=True,
    )
    op.create_index("login_failures_key", "login_failures", ["key", "at"], if_not_exists=True)
    op.create_table(
        "subsidy_rates",
        sa.Column("county", sa.Text, primary_key=True),  # 'dali/eryuan'
        sa.Column("category", sa.Text, nullable=False),
        sa.Column("breakfast", sa.Text, nullable=False),  # yuan per meal, exact decimal text
        sa.Column("lunch", sa.Text, nullable=False),
        sa.Column("dinner", sa.Text, nullable=False),
        sa.Column("updated_by", sa.Text, nullable=False),
        sa.Column("updated_us", sa.BigInteger, nullable=False),
        if_not_exists=True,
    )
    op.create_table(
        "audit_log",
        sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("at_us", sa.BigInteger, nullable=False),
        sa.Column("username", sa.Text, nullable=False),
        sa.Column("action", sa.Text, nullable=False),
        sa.Column("object_kind", sa.Text, nullable=False),
        sa.Column("object_id", sa.Text, nullable=False),
        sa.Column("detail", sa.Text, nullable=False, server_default="{}"),
        sa.Column("client", sa.Text, nullable=False, server_default=""),
        sa.Column("status", sa.Integer, nullable=False),  # HTTP status answered; 0: a command
        sa.Column("prev_hash", sa.Text, nullable=False),
        sa.Column("hash", sa.Text, nullable=False),
        if_not_exists=True,
    )
    op.create_index("audit_log_user", "audit_log", ["username", "seq"], if_not_exists=True)
    op.create_index(
        "audit_log_object",
        "audit_log",
        ["object_kind", "object_id", "seq"],
        if_not_exists=True,
    )
    op.create_table(
        "audit_checkpoint",
        sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),  # last pruned
        sa.Column("hash", sa.Text, nullable=False),  # where the remaining chain starts
        sa.Column("at_us", sa.BigInteger, nullable=False),
        if_not_exists=True,
    )
    dialect = op.get_bind().dialect.name
    for statement in _POSTGRESQL_TRIGGERS if dialect == "postgresql" else _SQLITE_TRIGGERS:
        op.execute(statement)
    op.create_table(
        "kiosk_erasures",
        sa.Column("request_id", sa.Text, primary_key=True),
        sa.Column("device_id", sa.Text, primary_key=True),
        sa.Column("command", sa.Text, nullable=False),
        sa.Column("created_us", sa.BigInteger, nullable=False),
        sa.Column("sent_us", sa.BigInteger),
        if_not_exists=True,
    )


def downgrade() -> None:
    for table in (
        "kiosk_erasures",
        "audit_checkpoint",
        "audit_log",
        "subsidy_rates",
        "login_failures",
        "sessions",
        "grants",
        "users",
        "areas",
    ):
        op.drop_table(table)
