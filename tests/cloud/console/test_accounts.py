"""Accounts: argon2 hashing, password policy, login limits, sessions, CSRF, role/area checks.
The store-level tests run on SQLite and on PostgreSQL (`store_at`)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import typer
from alembic import command
from sqlalchemy import Connection, text
from sqlalchemy.exc import IntegrityError
from typer.testing import CliRunner

from cloud_ingest.cli import console as console_cli
from cloud_ingest.console import accounts
from cloud_ingest.console.accounts import AccountStore, LoginLimits, LoginRefused, SessionPolicy
from cloud_ingest.console.roles import Action, Grant, Role, User, can
from cloud_ingest.db import Database
from cloud_ingest.errors import AccountError, PasswordRejected
from cloud_ingest.migrations import config, current, head
from cloud_ingest.registry import areas
from tests.support.console import FAST_HASHER, FakeClock, console_db_with_areas
from tests.support.databases import StoreAt

GOOD_PW = "xishan-courtyard-77"


@pytest.fixture
def db_path(tmp_path: Path, store_at: StoreAt) -> Path | str:
    return console_db_with_areas(tmp_path, store_at("console"))


@contextmanager
def console_at(location: Path | str, revision: str) -> Iterator[Connection]:
    """A console store brought to an earlier `revision` only; its write transaction, to fill it
    as a store of that release would be (the next AccountStore upgrades it)."""
    old = Database(location, "console", migrate=False)
    cfg = config("console")
    try:
        with old.write() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, revision)
            yield conn
    finally:
        old.close()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def store(db_path: Path | str, clock: FakeClock) -> Iterator[AccountStore]:
    store = AccountStore(db_path, clock, FAST_HASHER, LoginLimits(), SessionPolicy())
    yield store
    store.close()


def test_password_is_stored_as_argon2id_and_verifies(db_path: Path | str, clock: FakeClock) -> None:
    real = AccountStore(db_path, clock)  # library-default parameters, as in production
    real.add_user("Li.Wei", GOOD_PW, Role.MANAGER, "dali/eryuan")
    with real.db.read() as conn:
        stored = conn.execute(text("SELECT username, password_hash FROM users")).one()
    assert stored[0] == "li.wei"
    assert stored[1].startswith("$argon2id$") and GOOD_PW not in stored[1]
    user = real.authenticate("li.wei", GOOD_PW, "10.0.0.1")
    assert user.username == "li.wei"
    assert user.grants == (Grant(Role.MANAGER, "dali/eryuan"),)
    real.close()


def test_wrong_password_and_unknown_user_get_the_same_answer(store: AccountStore) -> None:
    store.add_user("liwei", GOOD_PW, Role.VIEWER, "dali")
    with pytest.raises(LoginRefused) as wrong:
        store.authenticate("liwei", GOOD_PW + "x", "10.0.0.1")
    with pytest.raises(LoginRefused) as unknown:
        store.authenticate("nobody", GOOD_PW, "10.0.0.2")
    assert str(wrong.value) == str(unknown.value) == "用户名或密码错误 Wrong username or password"
    assert not wrong.value.rate_limited and not unknown.value.rate_limited


def test_disabled_user_cannot_log_in_and_loses_sessions(store: AccountStore) -> None:
    user = store.add_user("liwei", GOOD_PW, Role.VIEWER, "dali")
    s = store.start_session(user)
    store.set_disabled("liwei", True)
    assert store.session(s.token) is None
    with pytest.raises(LoginRefused):
        store.authenticate("liwei", GOOD_PW, "10.0.0.1")
    store.set_disabled("liwei", False)
    assert store.authenticate("liwei", GOOD_PW, "10.0.0.1").username == "liwei"


@pytest.mark.parametrize(
    "password",
    [
        "short-pw",  # 8 characters
        "changeme",
        "password123",
        "Password2024!",
        "admin123456",
        "warmcard2024",
        "1234567890",
        "qwertyuiop",
        "aaaaaaaaaaaa",
        "abababababab",
        "my-liwei-pass",  # contains the username
    ],
)
def test_password_policy_refuses_weak_passwords(store: AccountStore, password: str) -> None:
    with pytest.raises(PasswordRejected):
        store.add_user("liwei", password, Role.VIEWER, "dali")
    assert store.get_user("liwei") is None


def test_user_needs_a_valid_name_role_and_known_area(store: AccountStore) -> None:
    with pytest.raises(AccountError, match="invalid username"):
        store.add_user("李伟", GOOD_PW, Role.VIEWER, "dali")
    with pytest.raises(AccountError, match="unknown area 'dali/binchuan'"):
        store.add_user("liwei", GOOD_PW, Role.VIEWER, "dali/binchuan")
    with pytest.raises(AccountError, match="unknown role"):
        Role.parse("superuser")
    store.add_user("liwei", GOOD_PW, Role.VIEWER, "/")
    with pytest.raises(AccountError, match="already exists"):
        store.add_user("LIWEI", GOOD_PW, Role.VIEWER, "dali")


def test_rate_limit_per_username_with_a_fake_clock(store: AccountStore, clock: FakeClock) -> None:
    store.add_user("liwei", GOOD_PW, Role.VIEWER, "dali")
    for i in range(5):
        with pytest.raises(LoginRefused) as exc:
            store.authenticate("liwei", "wrong-password", f"10.0.0.{i}")
        assert not exc.value.rate_limited
        clock.advance(10)
    # Sixth try: throttled even with the right password, and before the password is checked.
    with pytest.raises(LoginRefused) as exc:
        store.authenticate("liwei", GOOD_PW, "10.0.0.99")
    assert exc.value.rate_limited
    assert exc.value.retry_after_s == pytest.approx(15 * 60 - 50)
    # An unknown name is throttled exactly the same way: the limiter does not tell them apart.
    for _ in range(5):
        with pytest.raises(LoginRefused):
            store.authenticate("ghost", "wrong-password", "10.0.1.1")
    with pytest.raises(LoginRefused) as ghost:
        store.authenticate("ghost", "wrong-password", "10.0.1.2")
    assert ghost.value.rate_limited
    assert "Too many attempts" in str(ghost.value)
    # The window slides: once the first failures are 15 minutes old, the user may try again.
    clock.advance(15 * 60 - 50 + 1)
    assert store.authenticate("liwei", GOOD_PW, "10.0.0.99").username == "liwei"
    # Success clears the username's failures.
    with pytest.raises(LoginRefused) as exc:
        store.authenticate("liwei", "wrong-password", "10.0.0.99")
    assert not exc.value.rate_limited


def test_rate_limit_per_address(db_path: Path | str, clock: FakeClock) -> None:
    store = AccountStore(db_path, clock, FAST_HASHER, LoginLimits(per_user=5, per_ip=8))
    store.add_user("liwei", GOOD_PW, Role.VIEWER, "dali")
    for i in range(8):  # spraying different names from one address
        with pytest.raises(LoginRefused):
            store.authenticate(f"user{i}", "wrong-password", "192.0.2.7")
    with pytest.raises(LoginRefused) as exc:
        store.authenticate("liwei", GOOD_PW, "192.0.2.7")
    assert exc.value.rate_limited
    assert store.authenticate("liwei", GOOD_PW, "192.0.2.8").username == "liwei"
    store.close()


def test_session_token_is_stored_only_as_hash_and_expires(
    store: AccountStore, clock: FakeClock
) -> None:
    user = store.add_user("liwei", GOOD_PW, Role.VIEWER, "dali")
    new = store.start_session(user, "10.0.0.1")
    with store.db.read() as conn:
        stored = list(conn.execute(text("SELECT token_hash FROM sessions")).scalars())
    assert stored == [accounts.hash_token(new.token)] and new.token not in stored
    session = store.session(new.token)
    assert session is not None and session.user.username == "liwei"
    assert session.csrf_token == new.csrf_token != new.token
    assert store.session("forged-token") is None
    # Idle timeout: 2 h without a request ends it.
    clock.advance(2 * 3600)
    assert store.session(new.token) is None
    with store.db.read() as conn:
        assert conn.execute(text("SELECT count(*) FROM sessions")).scalar_one() == 0


def test_session_absolute_lifetime_even_when_active(store: AccountStore, clock: FakeClock) -> None:
    user = store.add_user("liwei", GOOD_PW, Role.VIEWER, "dali")
    new = store.start_session(user)
    for _ in range(11):
        clock.advance(3600)
        assert store.session(new.token) is not None  # each request touches last_seen
    clock.advance(3600)
    assert store.session(new.token) is None  # 12 h after login, whatever the activity


def test_logout_and_password_change_end_sessions(store: AccountStore, clock: FakeClock) -> None:
    user = store.add_user("liwei", GOOD_PW, Role.VIEWER, "dali")
    a, b = store.start_session(user), store.start_session(user)
    store.end_session(a.token)
    assert store.session(a.token) is None and store.session(b.token) is not None
    store.set_password("liwei", "another-good-pass-9")
    assert store.session(b.token) is None
    with pytest.raises(LoginRefused):
        store.authenticate("liwei", GOOD_PW, "10.0.0.1")
    assert store.authenticate("liwei", "another-good-pass-9", "10.0.0.1").id == user.id


def test_purge_expired(store: AccountStore, clock: FakeClock) -> None:
    user = store.add_user("liwei", GOOD_PW, Role.VIEWER, "dali")
    store.start_session(user)
    clock.advance(3600)
    fresh = store.start_session(user)
    clock.advance(3600 + 1)
    assert store.purge_expired() == 1
    assert store.session(fresh.token) is not None


def test_csrf_token_rejected_without_or_with_a_wrong_token() -> None:
    expected = accounts.csrf_token_for("session-token-a")
    assert accounts.csrf_matches(expected, expected)
    assert not accounts.csrf_matches(expected, None)
    assert not accounts.csrf_matches(expected, "")
    assert not accounts.csrf_matches(expected, accounts.csrf_token_for("session-token-b"))


def test_can_by_role_and_area_including_the_prefix_trap() -> None:
    manager = User(1, "m", (Grant(Role.MANAGER, "dali/eryuan"),))
    viewer = User(2, "v", (Grant(Role.VIEWER, "dali"),))
    mixed = User(3, "x", (Grant(Role.VIEWER, "dali"), Grant(Role.ADMIN, "dali/er")))
    root = User(4, "r", (Grant(Role.ADMIN, areas.ROOT),))
    site = "dali/eryuan/xishan/xs-01"
    assert can(manager, Action.VIEW, site)
    assert can(manager, Action.ACK_ALERT, site)
    assert not can(manager, Action.MANAGE_USERS, site)
    assert not can(manager, Action.VIEW, "dali")  # above the grant
    assert not can(manager, Action.VIEW, "dali/er/haidong/hd-01")  # sibling county
    assert can(viewer, Action.VIEW, site) and can(viewer, Action.EXPORT, site)
    assert not can(viewer, Action.EDIT_REGISTRY, site)
    # Admin on 'dali/er' must not reach 'dali/eryuan' (string prefix, not path prefix).
    assert can(mixed, Action.MANAGE_USERS, "dali/er/haidong")
    assert not can(mixed, Action.MANAGE_USERS, site)
    assert can(mixed, Action.VIEW, site)
    assert can(root, Action.MANAGE_AREAS, "anywhere/else")
    assert not can(None, Action.VIEW, site)
    assert not can(User(5, "d", (Grant(Role.ADMIN, ""),), disabled=True), Action.VIEW, site)


def test_staff_and_finance_stand_where_their_work_is() -> None:
    site, county = "dali/eryuan/xishan/xs-01", "dali/eryuan"
    staff = User(1, "s", (Grant(Role.STAFF, site),))
    finance = User(2, "f", (Grant(Role.FINANCE, county),))
    manager = User(3, "m", (Grant(Role.MANAGER, county),))
    assert can(staff, Action.RECORD_MEAL, site) and can(staff, Action.EXPORT, site)
    assert not can(staff, Action.RECORD_MEAL, "dali/eryuan/xishan/xs-02")
    assert not can(staff, Action.EDIT_REGISTRY, site) and not can(staff, Action.SET_SUBSIDY, site)
    assert can(finance, Action.SET_SUBSIDY, county) and can(finance, Action.EXPORT, site)
    assert not can(finance, Action.RECORD_MEAL, site) and not can(finance, Action.ACK_ALERT, site)
    assert can(manager, Action.RECORD_MEAL, site) and not can(manager, Action.SET_SUBSIDY, county)
    admin = User(4, "a", (Grant(Role.ADMIN, county),))
    assert can(admin, Action.SET_SUBSIDY, county) and can(admin, Action.RECORD_MEAL, site)
    assert not staff.is_admin and admin.is_admin


def test_a_grants_table_from_before_the_new_roles_is_widened(store_at: StoreAt) -> None:
    """console_0003 rebuilds grants with the staff and finance roles: a console_0002 store's
    users and grants are kept, the new roles are accepted and an unknown one still refused."""
    with console_at(store_at("console"), "console_0002") as conn:
        conn.execute(
            text(
                "INSERT INTO users (id, username, password_hash, disabled, created_at,"
                " password_changed_at) VALUES (1, 'old', 'x', 0, 0, 0)"
            )
        )
        conn.execute(text("INSERT INTO grants VALUES (1, 'dali', 'manager')"))
        with pytest.raises(IntegrityError), conn.begin_nested():  # the old CHECK
            conn.execute(text("INSERT INTO grants VALUES (1, 'dali/er', 'staff')"))
    store = AccountStore(store_at("console"), FakeClock(), FAST_HASHER)  # upgrades on opening
    assert current(store.db) == head("console")
    user = store.get_user("old")
    assert user is not None and user.grants == (Grant(Role.MANAGER, "dali"),)  # kept
    with store.db.write() as conn:
        conn.execute(text("INSERT INTO grants VALUES (1, 'dali/eryuan', 'finance')"))
        conn.execute(text("INSERT INTO grants VALUES (1, 'dali/er', 'staff')"))
    user = store.get_user("old")
    assert user is not None
    assert {Grant(Role.FINANCE, "dali/eryuan"), Grant(Role.STAFF, "dali/er")} <= set(user.grants)
    with pytest.raises(IntegrityError), store.db.write() as conn:
        conn.execute(text("INSERT INTO grants VALUES (1, 'dali/x', 'owner')"))
    store.close()


def test_grant_and_revoke(store: AccountStore) -> None:
    store.add_user("liwei", GOOD_PW, Role.VIEWER, "dali/eryuan")
    user = store.grant("liwei", Role.MANAGER, "dali/er")
    assert user.role_at("dali/er/haidong") is Role.MANAGER
    assert user.role_at("dali/eryuan/xishan") is Role.VIEWER
    user = store.grant("liwei", Role.ADMIN, "dali/eryuan")  # changes the existing grant
    assert user.grants == (Grant(Role.MANAGER, "dali/er"), Grant(Role.ADMIN, "dali/eryuan"))
    user = store.revoke("liwei", "dali/er")
    assert user.grants == (Grant(Role.ADMIN, "dali/eryuan"),)
    with pytest.raises(AccountError, match="no grant"):
        store.revoke("liwei", "dali/er")


def cli_app() -> typer.Typer:
    app = typer.Typer()
    console_cli.register(app)
    return app


def test_cli_user_add_from_stdin_and_policy(db_path: Path | str) -> None:
    runner = CliRunner()
    app = cli_app()
    args = ["user", "add", "--db", str(db_path), "--username", "admin1", "--role", "admin"]
    ok = runner.invoke(app, [*args, "--area", "/", "--password-stdin"], input=GOOD_PW + "\n")
    assert ok.exit_code == 0, ok.output
    assert "admin1" in ok.output
    weak = runner.invoke(
        app, [*args[:5], "admin2", *args[6:], "--area", "dali", "--password-stdin"], input="pw\n"
    )
    assert weak.exit_code != 0
    assert "too short" in weak.output
    # Not interactive and no --password-stdin: refuse rather than invent a password.
    none = runner.invoke(app, [*args[:5], "admin3", *args[6:], "--area", "dali"], input="")
    assert none.exit_code != 0
    listed = runner.invoke(app, ["user", "list", "--db", str(db_path)])
    assert listed.exit_code == 0
    assert "admin1" in listed.output and "admin2" not in listed.output
    store = AccountStore(db_path, FakeClock())
    assert store.authenticate("admin1", GOOD_PW, "127.0.0.1").top_role is Role.ADMIN
    store.close()


def test_a_withdrawn_login_is_not_counted_and_a_success_clears_only_its_own_row(
    store: AccountStore,
) -> None:
    """The ids of the counted rows: a busy server's withdrawal and a success remove exactly the
    rows of that attempt, even when other attempts from the address share its second."""
    store.add_user("liwei", GOOD_PW, Role.VIEWER, "dali")
    for _ in range(3):
        with pytest.raises(LoginRefused):
            store.authenticate("someone", "wrong-password", "192.0.2.9")
    store.withdraw(store.claim_login("liwei", "192.0.2.9"))
    assert store.authenticate("liwei", GOOD_PW, "192.0.2.9").username == "liwei"
    with store.db.read() as conn:
        left = conn.execute(text("SELECT key FROM login_failures ORDER BY id")).scalars().all()
    assert left == ["user:someone", "ip:192.0.2.9"] * 3


def test_the_newest_sessions_stay_beyond_the_cap(db_path: Path | str, clock: FakeClock) -> None:
    store = AccountStore(db_path, clock, FAST_HASHER, sessions=SessionPolicy(max_per_user=3))
    user = store.add_user("liwei", GOOD_PW, Role.VIEWER, "dali")
    tokens = []
    for _ in range(5):
        tokens.append(store.start_session(user).token)
        clock.advance(1)
    tokens.append(store.start_session(user).token)
    assert [store.session(t) is not None for t in tokens] == [False] * 3 + [True] * 3
    store.close()


def test_failures_counted_before_the_upgrade_stay_counted(store_at: StoreAt) -> None:
    """console_0002 gives login failures an id: rows of a store at console_0001 are kept."""
    with console_at(store_at("console"), "console_0001") as conn:
        conn.execute(
            text("INSERT INTO login_failures (key, at) VALUES (:key, :at)"),
            [{"key": "user:liwei", "at": 1_700_000_000.0 - i} for i in range(5)],
        )
    clock = FakeClock()
    store = AccountStore(store_at("console"), clock, FAST_HASHER)  # upgrades on opening
    assert current(store.db) == head("console")
    with pytest.raises(LoginRefused) as exc:
        store.claim_login("liwei", "10.0.0.1")
    assert exc.value.rate_limited
    with store.db.read() as conn:
        ids = conn.execute(text("SELECT id FROM login_failures ORDER BY id")).scalars().all()
    assert ids == [1, 2, 3, 4, 5]
    store.close()


def test_console_0003_goes_back_and_forth(db_path: Path | str) -> None:
    """Down to console_0002 the staff and finance grants go (the old CHECK refuses them) and
    the others stay; up again, the new roles are accepted."""
    store = AccountStore(db_path, FakeClock(), FAST_HASHER)
    store.add_user("liwei", GOOD_PW, Role.MANAGER, "dali")
    store.add_user("li.canteen", GOOD_PW, Role.STAFF, "dali/eryuan")
    cfg = config("console")
    with store.db.write() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "console_0002")
    with store.db.read() as conn:
        assert conn.execute(text("SELECT role FROM grants")).scalars().all() == ["manager"]
    store.close()
    store = AccountStore(db_path, FakeClock(), FAST_HASHER)
    assert current(store.db) == head("console")
    assert store.grant("li.canteen", Role.FINANCE, "dali/eryuan").grants == (
        Grant(Role.FINANCE, "dali/eryuan"),
    )
    store.close()
