"""`warmcard user ...` and `warmcard area ...`: console accounts and the area hierarchy."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer

from cloud_ingest.cli.audit import record
from cloud_ingest.console import db as console_db
from cloud_ingest.console.accounts import AccountStore
from cloud_ingest.console.audit import Action as AuditAction
from cloud_ingest.console.audit import ObjectKind
from cloud_ingest.console.roles import Role, User
from cloud_ingest.db import Database
from cloud_ingest.errors import ConsoleError
from cloud_ingest.registry import areas

DbOption = typer.Option(
    ...,
    "--db",
    envvar="WARMCARD_CONSOLE_DB",
    help="The console store: an SQLite file (created if missing) or the database URL "
    "(postgresql+psycopg://…) of `[database] url`.",
)


@contextmanager
def _console(db: str, label: str = "") -> Iterator[Database]:
    """The console store named by --db; a refusal (ConsoleError) exits 1 with its message."""
    console = console_db.open_store(db)
    try:
        yield console
    except ConsoleError as exc:
        typer.echo(f"{label}{exc}", err=True)
        raise typer.Exit(1) from None
    finally:
        console.close()


@contextmanager
def _store(db: str) -> Iterator[AccountStore]:
    with _console(db, "错误 error: ") as console:
        yield AccountStore(console, time.time)


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        # One line; only the line ending is removed, spaces are part of the password.
        return sys.stdin.readline().rstrip("\r\n")
    if not sys.stdin.isatty():
        typer.echo(
            "错误 error: no terminal to ask for the password; pipe it in with --password-stdin",
            err=True,
        )
        raise typer.Exit(2)
    value: str = typer.prompt("密码 Password", hide_input=True, confirmation_prompt=True)
    return value


def _describe(user: User) -> str:
    grants = ", ".join(f"{g.role.label}@{g.area or '/'}" for g in user.grants) or "-"
    state = " (已停用 disabled)" if user.disabled else ""
    return f"{user.username}: {grants}{state}"


user_app = typer.Typer(help="控制台用户 Console users: add, grant, revoke, passwd, disable.")
area_app = typer.Typer(help="区域 Areas: prefecture → county → township → site.")


@user_app.command("add")
def user_add(
    username: str = typer.Option(..., "--username", help="2-32 of a-z 0-9 . _ -"),
    role: str = typer.Option(..., "--role", help="viewer, manager or admin"),
    area: str = typer.Option(..., "--area", help="area path, e.g. dali/eryuan; '/' = all"),
    password_stdin: bool = typer.Option(False, "--password-stdin", help="Read one line."),
    db: str = DbOption,
) -> None:
    """Create a user with a role on an area. There is no default account."""
    with _store(db) as store:
        parsed = Role.parse(role)
        user = store.add_user(username, _read_password(password_stdin), parsed, area)
        typer.echo(f"已创建 created {_describe(user)}")
    record(db, AuditAction.ACCOUNT, ObjectKind.ACCOUNT, username, role=role, area=area)


@user_app.command("grant")
def user_grant(
    username: str = typer.Option(..., "--username"),
    role: str = typer.Option(..., "--role"),
    area: str = typer.Option(..., "--area"),
    db: str = DbOption,
) -> None:
    """Give a user a role on an area (replacing their role on exactly that area)."""
    with _store(db) as store:
        typer.echo(_describe(store.grant(username, Role.parse(role), area)))
    record(db, AuditAction.ACCOUNT, ObjectKind.ACCOUNT, username, grant=role, area=area)


@user_app.command("revoke")
def user_revoke(
    username: str = typer.Option(..., "--username"),
    area: str = typer.Option(..., "--area"),
    db: str = DbOption,
) -> None:
    """Remove a user's grant on exactly this area."""
    with _store(db) as store:
        typer.echo(_describe(store.revoke(username, area)))
    record(db, AuditAction.ACCOUNT, ObjectKind.ACCOUNT, username, revoke=area)


@user_app.command("passwd")
def user_passwd(
    username: str = typer.Option(..., "--username"),
    password_stdin: bool = typer.Option(False, "--password-stdin"),
    db: str = DbOption,
) -> None:
    """Set a new password; the user's sessions end."""
    with _store(db) as store:
        store.set_password(username, _read_password(password_stdin))
        typer.echo(f"已修改密码 password changed for {username}")
    record(db, AuditAction.ACCOUNT, ObjectKind.ACCOUNT, username, change="password")


def _set_disabled(db: str, username: str, disabled: bool) -> None:
    change, said = ("disabled", "已停用") if disabled else ("enabled", "已启用")
    with _store(db) as store:
        store.set_disabled(username, disabled)
        typer.echo(f"{said} {change} {username}")
    record(db, AuditAction.ACCOUNT, ObjectKind.ACCOUNT, username, change=change)


@user_app.command("disable")
def user_disable(username: str = typer.Option(..., "--username"), db: str = DbOption) -> None:
    """Stop a user logging in; their sessions end at once."""
    _set_disabled(db, username, True)


@user_app.command("enable")
def user_enable(username: str = typer.Option(..., "--username"), db: str = DbOption) -> None:
    """Let a disabled user log in again."""
    _set_disabled(db, username, False)


@user_app.command("list")
def user_list(db: str = DbOption) -> None:
    """Every user with their grants."""
    with _store(db) as store:
        for user in store.list_users():
            typer.echo(_describe(user))


@area_app.command("import")
def area_import(
    file: Annotated[Path, typer.Argument(help="CSV with columns path,name_zh,name_en")],
    db: str = DbOption,
) -> None:
    """Add or rename areas from a CSV; every bad row is reported and then nothing is written."""
    with _console(db) as console, console.write() as conn:
        result = areas.import_areas_csv(conn, file)
    typer.echo(f"已导入 imported: {result.added} added, {result.updated} renamed")


@area_app.command("list")
def area_list(
    under: str = typer.Option("/", "--under", help="only this area and below"), db: str = DbOption
) -> None:
    """The hierarchy, one area per line, indented by level."""
    with _console(db) as console, console.read() as conn:
        for area in areas.areas_under(conn, areas.parse_path(under)):
            indent = "  " * (len(areas.segments(area.path)) - 1)
            typer.echo(f"{indent}{area.path}  {area.bilingual()}")


def register(app: typer.Typer) -> None:
    """Add `user` and `area` commands to the `warmcard` app."""
    app.add_typer(user_app, name="user")
    app.add_typer(area_app, name="area")
