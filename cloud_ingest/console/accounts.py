"""Console users and access: argon2 passwords, roles granted on areas, sessions, CSRF, login limits.

Who may do what is in console.roles, the password policy in console.passwords. There is no
default account: the first administrator is created with ``warmcard user add``.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import re
import secrets
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from cloud_ingest.console.passwords import MAX_PASSWORD, check_password_policy
from cloud_ingest.console.roles import ROLE_NAMES, Grant, Role, User
from cloud_ingest.errors import AccountError
from cloud_ingest.registry import areas

Clock = Callable[[], float]
"""Seconds since the epoch; time.time in production, a fake in tests."""

USERNAME_RE = re.compile(r"[a-z0-9][a-z0-9._-]{1,31}")

ROLE_CHECK = "CHECK (role IN (" + ", ".join(f"'{r.label}'" for r in ROLE_NAMES) + "))"
GRANTS = f"""
CREATE TABLE IF NOT EXISTS grants (
    user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    area    TEXT NOT NULL,          -- '' = everything
    role    TEXT NOT NULL {ROLE_CHECK},
    PRIMARY KEY (user_id, area)
);
"""
SCHEMA = """
CREATE TABLE IF NOT EXISTS users (
    id                  INTEGER PRIMARY KEY,
    username            TEXT NOT NULL UNIQUE,
    password_hash       TEXT NOT NULL,
    disabled            INTEGER NOT NULL DEFAULT 0,
    created_at          REAL NOT NULL,
    password_changed_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS sessions (
    token_hash TEXT PRIMARY KEY,    -- sha256 of the cookie value; the token itself is never stored
    user_id    INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at REAL NOT NULL,
    last_seen  REAL NOT NULL,
    expires_at REAL NOT NULL,
    client_ip  TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS sessions_user ON sessions (user_id);
CREATE TABLE IF NOT EXISTS login_failures (
    key TEXT NOT NULL,              -- 'user:<name>' or 'ip:<address>'
    at  REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS login_failures_key ON login_failures (key, at);
"""


def init_schema(conn: sqlite3.Connection) -> None:
    """Create the users, grants, sessions and login_failures tables if missing."""
    conn.executescript(SCHEMA + GRANTS)
    _widen_role_check(conn)


def _grants_sql(conn: sqlite3.Connection) -> str:
    row = conn.execute("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'grants'")
    return str(row.fetchone()[0])


def _widen_role_check(conn: sqlite3.Connection) -> None:
    """A grants table made before the finance and staff roles: rebuilt with today's CHECK.

    SQLite cannot alter a CHECK constraint, so the rows move to a new table in one transaction
    (grants have no dependants); a second process opening the file waits and finds it done.
    """
    if ROLE_CHECK in _grants_sql(conn):
        return  # the usual case: no write lock taken
    conn.execute("BEGIN IMMEDIATE")
    try:
        if ROLE_CHECK not in _grants_sql(conn):
            conn.execute("ALTER TABLE grants RENAME TO grants_old")
            conn.execute(GRANTS)
            conn.execute("INSERT INTO grants SELECT user_id, area, role FROM grants_old")
            conn.execute("DROP TABLE grants_old")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def normalise_username(text: str) -> str:
    """Lower-case and check a username; raise AccountError if it is not a valid one."""
    name = text.strip().lower()
    if not USERNAME_RE.fullmatch(name):
        raise AccountError(
            f"用户名无效 invalid username {text!r}: 2-32 characters of a-z, 0-9, '.', '_', '-'"
        )
    return name


@dataclass(frozen=True)
class LoginLimits:
    """Failed logins allowed in a sliding window, per username and per client address."""

    per_user: int = 5
    per_ip: int = 20  # a township office shares one NAT address among several administrators
    window_s: float = 15 * 60


@dataclass(frozen=True)
class SessionPolicy:
    lifetime_s: float = 12 * 3600  # one working day, then log in again
    idle_s: float = 2 * 3600
    touch_every_s: float = 60  # write last_seen at most this often, not on every request
    # A phone, an office PC and a few browsers; a new login beyond this ends the oldest session,
    # so a leaked password or a script logging in in a loop cannot pile up sessions.
    max_per_user: int = 10


@dataclass(frozen=True)
class NewSession:
    """What login hands back: the cookie value (shown once, never stored) and its CSRF token."""

    token: str
    csrf_token: str
    expires_at: float


@dataclass(frozen=True)
class Session:
    user: User
    csrf_token: str
    expires_at: float


@dataclass(frozen=True)
class LoginAttempt:
    """A login counted against the limits and not yet decided (see `AccountStore.claim_login`)."""

    username_key: str
    client_ip: str
    user_row: int
    ip_row: int


class LoginRefused(AccountError):
    """Login failed. `rate_limited` tells a throttle from bad credentials; neither says more."""

    def __init__(self, rate_limited: bool, retry_after_s: float = 0.0) -> None:
        self.rate_limited = rate_limited
        self.retry_after_s = retry_after_s
        if rate_limited:
            minutes = max(1, round(retry_after_s / 60))
            msg = (
                f"尝试次数过多，请 {minutes} 分钟后再试 "
                f"Too many attempts; try again in {minutes} min"
            )
        else:
            msg = "用户名或密码错误 Wrong username or password"
        super().__init__(msg)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def csrf_token_for(session_token: str) -> str:
    """The synchronizer token of a session, derived from it so nothing more is stored."""
    return hmac.new(session_token.encode(), b"warmcard-csrf-v1", hashlib.sha256).hexdigest()


def csrf_matches(expected: str, submitted: str | None) -> bool:
    return bool(submitted) and hmac.compare_digest(expected.encode(), (submitted or "").encode())


_DUMMY_HASHES: dict[tuple[int, int, int, int, int, str], str] = {}


class AccountStore:
    """Users, grants, sessions and login limits in one SQLite connection.

    The clock and the password hasher are passed in so tests control time and cost.
    """

    def __init__(
        self,
        conn: sqlite3.Connection,
        clock: Clock,
        hasher: PasswordHasher | None = None,
        limits: LoginLimits | None = None,
        sessions: SessionPolicy | None = None,
    ) -> None:
        self.conn = conn
        self.clock = clock
        self.hasher = hasher or PasswordHasher()
        self.limits = limits or LoginLimits()
        self.policy = sessions or SessionPolicy()

    # --- users and grants -------------------------------------------------------------

    def _check_area(self, area: str) -> str:
        path = areas.parse_path(area)
        if path != areas.ROOT and areas.get_area(self.conn, path) is None:
            raise AccountError(
                f"未知区域 unknown area {path!r}; import the areas first (warmcard area import)"
            )
        return path

    def add_user(self, username: str, password: str, role: Role, area: str) -> User:
        """Create a user with one grant; refuse an existing name or a weak password."""
        name = normalise_username(username)
        check_password_policy(password, name)
        path = self._check_area(area)
        now = self.clock()
        pw_hash = self.hasher.hash(password)
        try:
            with self.conn:
                cur = self.conn.execute(
                    "INSERT INTO users (username, password_hash, created_at, password_changed_at)"
                    " VALUES (?, ?, ?, ?)",
                    (name, pw_hash, now, now),
                )
                self.conn.execute(
                    "INSERT INTO grants (user_id, area, role) VALUES (?, ?, ?)",
                    (cur.lastrowid, path, role.label),
                )
        except sqlite3.IntegrityError:
            raise AccountError(f"用户已存在 user {name!r} already exists") from None
        user = self.get_user(name)
        assert user is not None
        return user

    def grant(self, username: str, role: Role, area: str) -> User:
        """Give (or change) the user's role on an area."""
        user = self._require(username)
        path = self._check_area(area)
        with self.conn:
            self.conn.execute(
                "INSERT INTO grants (user_id, area, role) VALUES (?, ?, ?)"
                " ON CONFLICT (user_id, area) DO UPDATE SET role = excluded.role",
                (user.id, path, role.label),
            )
        return self._require(username)

    def revoke(self, username: str, area: str) -> User:
        """Remove the user's grant on exactly this area."""
        user = self._require(username)
        path = areas.parse_path(area)
        with self.conn:
            cur = self.conn.execute(
                "DELETE FROM grants WHERE user_id = ? AND area = ?", (user.id, path)
            )
        if cur.rowcount == 0:
            raise AccountError(f"{user.username!r} has no grant on {path or '/'!r}")
        return self._require(username)

    def set_password(self, username: str, password: str) -> None:
        """Replace the password and end every session of the user."""
        user = self._require(username)
        check_password_policy(password, user.username)
        pw_hash = self.hasher.hash(password)
        with self.conn:
            self.conn.execute(
                "UPDATE users SET password_hash = ?, password_changed_at = ? WHERE id = ?",
                (pw_hash, self.clock(), user.id),
            )
            self.conn.execute("DELETE FROM sessions WHERE user_id = ?", (user.id,))

    def set_disabled(self, username: str, disabled: bool) -> None:
        """Disable (ending every session) or re-enable a user."""
        user = self._require(username)
        with self.conn:
            self.conn.execute(
                "UPDATE users SET disabled = ? WHERE id = ?", (int(disabled), user.id)
            )
            if disabled:
                self.conn.execute("DELETE FROM sessions WHERE user_id = ?", (user.id,))

    def get_user(self, username: str) -> User | None:
        row = self.conn.execute(
            "SELECT id, username, disabled FROM users WHERE username = ?",
            (username.strip().lower(),),
        ).fetchone()
        return self._load(row) if row else None

    def get_user_by_id(self, user_id: int) -> User | None:
        row = self.conn.execute(
            "SELECT id, username, disabled FROM users WHERE id = ?", (user_id,)
        ).fetchone()
        return self._load(row) if row else None

    def list_users(self) -> list[User]:
        rows = self.conn.execute("SELECT id, username, disabled FROM users ORDER BY username")
        return [self._load(r) for r in rows.fetchall()]

    def _load(self, row: tuple[int, str, int]) -> User:
        grants = tuple(
            Grant(Role.parse(role), area)
            for area, role in self.conn.execute(
                "SELECT area, role FROM grants WHERE user_id = ? ORDER BY area", (row[0],)
            )
        )
        return User(id=row[0], username=row[1], grants=grants, disabled=bool(row[2]))

    def _require(self, username: str) -> User:
        user = self.get_user(username)
        if user is None:
            raise AccountError(f"没有此用户 no user {username!r}")
        return user

    # --- login ------------------------------------------------------------------------

    def _failures(self, key: str, since: float) -> list[float]:
        rows = self.conn.execute(
            "SELECT at FROM login_failures WHERE key = ? AND at > ? ORDER BY at", (key, since)
        )
        return [at for (at,) in rows.fetchall()]

    def _retry_after(self, username_key: str, ip: str, now: float) -> float:
        """Seconds until a login may be tried again; 0 when it may be tried now."""
        since = now - self.limits.window_s
        wait = 0.0
        for key, limit in ((f"user:{username_key}", self.limits.per_user),
                           (f"ip:{ip}", self.limits.per_ip)):  # fmt: skip
            recent = self._failures(key, since)
            if len(recent) >= limit:
                # Free again when the oldest failure that keeps us at the limit leaves the window.
                wait = max(wait, recent[-limit] + self.limits.window_s - now)
        return wait

    def _claim_attempt(self, username_key: str, ip: str, now: float) -> tuple[int, int]:
        """Check the limits and record this attempt as a failure, in one write transaction.

        Recording before the password check, under BEGIN IMMEDIATE (one writer at a time across
        every process sharing the file), is what makes the limit hold for simultaneous logins:
        each attempt sees the ones before it, finished or not. A success deletes the rows again.
        Returns the rowids of the username's and the address's rows.
        """
        conn = self.conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            wait = self._retry_after(username_key, ip, now)
            if wait > 0:
                raise LoginRefused(rate_limited=True, retry_after_s=wait)
            conn.execute("DELETE FROM login_failures WHERE at <= ?", (now - self.limits.window_s,))
            rowids = tuple(
                conn.execute(
                    "INSERT INTO login_failures (key, at) VALUES (?, ?)", (key, now)
                ).lastrowid
                or 0
                for key in (f"user:{username_key}", f"ip:{ip}")
            )
            conn.commit()
        except BaseException:
            conn.rollback()
            raise
        return rowids[0], rowids[1]

    def _verify_dummy(self, password: str) -> None:
        # Unknown users cost the same argon2 work as known ones, so timing does not tell them
        # apart. The dummy hash is made once per hasher, not per store (a store lives one request).
        h = self.hasher
        key = (h.time_cost, h.memory_cost, h.parallelism, h.hash_len, h.salt_len, h.type.name)
        dummy = _DUMMY_HASHES.get(key)
        if dummy is None:
            dummy = _DUMMY_HASHES.setdefault(key, self.hasher.hash(secrets.token_urlsafe(16)))
        with contextlib.suppress(VerificationError):
            self.hasher.verify(dummy, password)

    def claim_login(self, username: str, client_ip: str) -> LoginAttempt:
        """Step 1 of a login: refuse at the limit (429), else count this attempt as a failure now.

        The throttle is checked before the password, per username whether or not it exists,
        so neither the answer nor its timing reveals which usernames exist.
        """
        now = self.clock()
        key = username.strip().lower()[:64]
        user_row, ip_row = self._claim_attempt(key, client_ip, now)
        return LoginAttempt(key, client_ip, user_row, ip_row)

    def withdraw(self, attempt: LoginAttempt) -> None:
        """Forget a claimed attempt whose password was never checked (the server was busy)."""
        with self.conn:
            self.conn.execute(
                "DELETE FROM login_failures WHERE rowid IN (?, ?)",
                (attempt.user_row, attempt.ip_row),
            )

    def check_password(self, attempt: LoginAttempt, password: str) -> User:
        """Step 2: the argon2 check; raise LoginRefused, the same for any name.

        A failure stays counted (step 1 wrote it); a success clears the username's failures
        and this attempt's row for the address.
        """
        key = attempt.username_key
        row = None
        if USERNAME_RE.fullmatch(key) and len(password) <= MAX_PASSWORD:
            row = self.conn.execute(
                "SELECT id, password_hash, disabled FROM users WHERE username = ?", (key,)
            ).fetchone()
        ok = False
        if row is None:
            self._verify_dummy(password[:MAX_PASSWORD])
        else:
            try:
                ok = self.hasher.verify(row[1], password)
            except (VerifyMismatchError, InvalidHashError, VerificationError):
                ok = False
        if not ok or row is None or row[2]:
            raise LoginRefused(rate_limited=False)
        with self.conn:
            self.conn.execute(
                "DELETE FROM login_failures WHERE key = ? OR rowid = ?",
                (f"user:{key}", attempt.ip_row),
            )
            if self.hasher.check_needs_rehash(row[1]):
                # Parameters were raised since this hash was made; upgrade it while we have it.
                self.conn.execute(
                    "UPDATE users SET password_hash = ? WHERE id = ?",
                    (self.hasher.hash(password), row[0]),
                )
        user = self.get_user_by_id(row[0])
        assert user is not None
        return user

    def authenticate(self, username: str, password: str, client_ip: str) -> User:
        """Check credentials under the login limits: `claim_login`, then `check_password`."""
        return self.check_password(self.claim_login(username, client_ip), password)

    # --- sessions ---------------------------------------------------------------------

    def start_session(self, user: User, client_ip: str = "") -> NewSession:
        """Create a session (only the token's hash is stored); end the oldest beyond the cap."""
        token = secrets.token_urlsafe(32)
        now = self.clock()
        expires = now + self.policy.lifetime_s
        with self.conn:
            self.conn.execute(
                "INSERT INTO sessions (token_hash, user_id, created_at, last_seen, expires_at,"
                " client_ip) VALUES (?, ?, ?, ?, ?, ?)",
                (hash_token(token), user.id, now, now, expires, client_ip),
            )
            self.conn.execute(
                "DELETE FROM sessions WHERE user_id = ? AND rowid NOT IN (SELECT rowid FROM"
                " sessions WHERE user_id = ? ORDER BY created_at DESC, rowid DESC LIMIT ?)",
                (user.id, user.id, self.policy.max_per_user),
            )
        return NewSession(token=token, csrf_token=csrf_token_for(token), expires_at=expires)

    def session(self, token: str | None) -> Session | None:
        """The live session for a cookie value, or None if unknown, expired, idle or disabled."""
        if not token or len(token) > 128:
            return None
        th = hash_token(token)
        row = self.conn.execute(
            "SELECT user_id, last_seen, expires_at FROM sessions WHERE token_hash = ?", (th,)
        ).fetchone()
        if row is None:
            return None
        user_id, last_seen, expires_at = row
        now = self.clock()
        if now >= expires_at or now - last_seen >= self.policy.idle_s:
            with self.conn:
                self.conn.execute("DELETE FROM sessions WHERE token_hash = ?", (th,))
            return None
        user = self.get_user_by_id(user_id)
        if user is None or user.disabled:
            return None
        if now - last_seen >= self.policy.touch_every_s:
            with self.conn:
                self.conn.execute(
                    "UPDATE sessions SET last_seen = ? WHERE token_hash = ?", (now, th)
                )
        return Session(user=user, csrf_token=csrf_token_for(token), expires_at=expires_at)

    def end_session(self, token: str | None) -> None:
        """Log out: forget the session (no error if it was already gone)."""
        if token:
            with self.conn:
                self.conn.execute("DELETE FROM sessions WHERE token_hash = ?", (hash_token(token),))

    def purge_expired(self) -> int:
        """Delete expired and idle sessions; returns how many. Run it now and then."""
        now = self.clock()
        with self.conn:
            cur = self.conn.execute(
                "DELETE FROM sessions WHERE expires_at <= ? OR last_seen <= ?",
                (now, now - self.policy.idle_s),
            )
        return cur.rowcount
