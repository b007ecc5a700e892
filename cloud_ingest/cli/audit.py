"""`warmcard audit verify` and `warmcard audit export`: the audit log's chain and a CSV copy."""

from __future__ import annotations

import getpass
import sys
from pathlib import Path
from typing import Annotated

import typer

from cloud_ingest.console.audit import Action, AuditEvent, AuditFilter, AuditLog, ObjectKind
from cloud_ingest.console.exports import write_csv

DbOption = typer.Option(
    ...,
    "--db",
    envvar="WARMCARD_CONSOLE_DB",
    help="The console store: an SQLite file or the database URL of `[database] url`.",
)
audit_app = typer.Typer(help="审计日志 Audit log: verify the chain, export as CSV.")

HEADER = (
    "序号 Seq", "时间 Time (UTC µs)", "用户 User", "操作 Action", "对象类型 Object kind",
    "对象 Object", "详情 Detail", "来源 From", "状态 Status", "前哈希 Previous hash", "哈希 Hash",
)  # fmt: skip


def command_user() -> str:
    """Who runs a command, as the audit log names them."""
    return f"cli:{getpass.getuser()}"


def record(
    db: Path | str, what: Action, kind: ObjectKind, object_id: str, **detail: object
) -> None:
    """One audit row for a command that read or changed personal data or an account."""
    log = AuditLog(db)
    try:
        log.append(AuditEvent(command_user(), what, kind, object_id, dict(detail), "cli"))
    finally:
        log.close()


@audit_app.command("verify")
def verify(db: str = DbOption) -> None:
    """Recompute the hash chain; exit 1 naming the first row that does not match."""
    log = AuditLog(db)
    try:
        verdict = log.verify()
    finally:
        log.close()
    if not verdict.ok:
        typer.echo(
            f"审计日志被改动 audit log altered: row {verdict.broken_seq}: {verdict.reason} "
            f"({verdict.rows} rows read)",
            err=True,
        )
        raise typer.Exit(1)
    typer.echo(f"完好 intact: {verdict.rows} rows, head {verdict.head}")


@audit_app.command("export")
def export(
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="CSV file; default stdout")
    ] = None,
    user: str = typer.Option("", "--user"),
    action: str = typer.Option("", "--action"),
    db: str = DbOption,
) -> None:
    """The audit log (or the rows of one user or action) as CSV, oldest first, with hashes."""
    log = AuditLog(db)
    try:
        rows = (
            (
                r.seq,
                r.at_us,
                r.username,
                r.action,
                r.object_kind,
                r.object_id,
                r.detail,
                r.client,
                r.status,
                r.prev_hash,
                r.hash,
            )
            for r in log.rows(AuditFilter(username=user, action=action))
        )
        write_csv(out if out is not None else sys.stdout.buffer, HEADER, rows)
    finally:
        log.close()
    record(db, Action.EXPORT, ObjectKind.AUDIT, "", of_user=user, of_action=action)


def register(app: typer.Typer) -> None:
    app.add_typer(audit_app, name="audit")
