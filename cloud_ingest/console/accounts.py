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
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import Connection, bindparam, text
from sqlalchemy.exc import IntegrityError

from cloud_ingest.console.db import Location, open_store
from cloud_ingest.console.passwords import MAX_PASSWORD, check_password_policy
from cloud_ingest.console.roles import Grant, Role, User
from cloud_ingest.errors import AccountError
from cloud_ingest.registry import areas

Clock = Callable[[], float]
"""Seconds since the epoch; time.time in production, a fake in tests."""

USERNAME_RE = re.compile(r"[a-z0-9][a-z0-9._-]{1,31}")


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
    """Users, grants, sessions and login limits in the console store, shared by every console
    process and command: a user may log in on one console and be served by another.

    The clock and the password hasher are passed in so tests control time and cost.
    """

    def __init__(
        self,
        console: Location,
        clock: Clock,
        hasher: PasswordHasher | None = None,
        limits: LoginLimits | None = None,
        sessions: SessionPolicy | None = None,
    ) -> None:
        self.db = open_store(console)
        self._owned = self.db is not console
        self.clock = clock
        self.hasher = hasher or PasswordHasher()
        self.limits = limits or LoginLimits()
        self.policy = sessions or SessionPolicy()

    def close(self) -> None:
        """Close the store if this object opened it (a `Database` passed in stays open)."""
        if self._owned:
            self.db.close()

    # --- users and grants -------------------------------------------------------------

    def _check_area(self, conn: Connection, area: str) -> str:
        path = areas.parse_path(area)
        if path != areas.ROOT and areas.get_area(conn, path) is None:
            raise AccountError(
                f"未知区域 unknown area {path!r}; import the areas first (warmcard area import)"
            )
        return path

    def add_user(self, username: str, password: str, role: Role, area: str) -> User:
        """Create a user with one grant; refuse an existing name or a weak password."""
        name = normalise_username(username)
        check_password_policy(password, name)
        pw_hash = self.hasher.hash(password)
        try:
            with self.db.write() as conn:
                path = self._check_area(conn, area)
                now = self.clock()
                user_id = conn.execute(
                    text(
                        "INSERT INTO users (username, password_hash, created_at,"
                        " password_changed_at) VALUES (:name, :hash, :now, :now) RETURNING id"
                    ),
                    {"name": name, "hash": pw_hash, "now": now},
                ).scalar_one()
                conn.execute(
                    text("INSERT INTO grants (user_id, area, role) VALUES (:id, :area, :role)"),
                    {"id": user_id, "area": path, "role": role.label},
                )
        except IntegrityError:
            raise AccountError(f"用户已存在 user {name!r} already exists") from None
        user = self.get_user(name)
        assert user is not None
        return user

    def grant(self, username: str, role: Role, area: str) -> User:
        """Give (or change) the user's role on an area."""
        with self.db.write() as conn:
            user = self._require(conn, username)
            path = self._check_area(conn, area)
            conn.execute(
                text(
                    "INSERT INTO grants (user_id, area, role) VALUES (:id, :area, :role)"
                    " ON CONFLICT (user_id, area) DO UPDATE SET role = excluded.role"
                ),
                {"id": user.id, "area": path, "role": role.label},
            )
            return self._require(conn, username)

    def revoke(self, username: str, area: str) -> User:
        """Remove the user's grant on exactly this area."""
        path = areas.parse_path(area)
        with self.db.write() as conn:
            user = self._require(conn, username)
            gone = conn.execute(
                text("DELETE FROM grants WHERE user_id = :id AND area = :area"),
                {"id": user.id, "area": path},
            ).rowcount
            if gone == 0:
                raise AccountError(f"{user.username!r} has no grant on {path or '/'!r}")
            return self._require(conn, username)

    def set_password(self, username: str, password: str) -> None:
        """Replace the password and end every session of the user."""
        user = self._require_now(username)
        check_password_policy(password, user.username)
        pw_hash = self.hasher.hash(password)
        with self.db.write() as conn:
            conn.execute(
                text(
                    "UPDATE users SET password_hash = :hash, password_changed_at = :now"
                    " WHERE id = :id"
                ),
                {"hash": pw_hash, "now": self.clock(), "id": user.id},
            )
            conn.execute(text("DELETE FROM sessions WHERE user_id = :id"), {"id": user.id})

    def set_disabled(self, username: str, disabled: bool) -> None:
        """Disable (ending every session) or re-enable a user."""
        with self.db.write() as conn:
            user = self._require(conn, username)
            conn.execute(
                text("UPDATE users SET disabled = :disabled WHERE id = :id"),
                {"disabled": int(disabled), "id": user.id},
            )
            if disabled:
                conn.execute(text("DELETE FROM sessions WHERE user_id = :id"), {"id": user.id})

    def get_user(self, username: str) -> User | None:
        with self.db.read() as conn:
            return _user_named(conn, username)

    def get_user_by_id(self, user_id: int) -> User | None:
        with self.db.read() as conn:
            return _user_with_id(conn, user_id)

    def list_users(self) -> list[User]:
        with self.db.read() as conn:
            rows = conn.execute(text("SELECT id, username, disabled FROM users")).all()
            # By code point, whatever the database's collation (see areas._by_path).
            return [_load(conn, r) for r in sorted(rows, key=lambda r: str(r.username))]

    def _require(self, conn: Connection, username: str) -> User:
        user = _user_named(conn, username)
        if user is None:
            raise AccountError(f"没有此用户 no user {username!r}")
        return user

    def _require_now(self, username: str) -> User:
        with self.db.read() as conn:
            return self._require(conn, username)

    # --- login ------------------------------------------------------------------------

    def _retry_after(self, conn: Connection, username_key: str, ip: str, now: float) -> float:
        """Seconds until a login may be tried again; 0 when it may be tried now."""
        since = now - self.limits.window_s
        wait = 0.0
        for key, limit in ((f"user:{username_key}", self.limits.per_user),
                           (f"ip:{ip}", self.limits.per_ip)):  # fmt: skip
            recent = list(
                conn.execute(
                    text(
                        "SELECT at FROM login_failures WHERE key = :key AND at > :since"
                        " ORDER BY at, id"
                    ),
                    {"key": key, "since": since},
                ).scalars()
            )
            if len(recent) >= limit:
                # Free again when the oldest failure that keeps us at the limit leaves the window.
                wait = max(wait, recent[-limit] + self.limits.window_s - now)
        return wait

    def _claim_attempt(self, username_key: str, ip: str, now: float) -> tuple[int, int]:
        """Check the limits and record this attempt as a failure, in one write transaction.

        Recording before the password check, in the store's write transaction (one writer at a
        time across every process and machine sharing the store), is what makes the limit hold
        for simultaneous logins: each attempt sees the ones before it, finished or not. A success
        deletes the rows again. Returns the ids of the username's and the address's rows.
        """
        with self.db.write() as conn:
            wait = self._retry_after(conn, username_key, ip, now)
            if wait > 0:
                raise LoginRefused(rate_limited=True, retry_after_s=wait)
            conn.execute(
                text("DELETE FROM login_failures WHERE at <= :before"),
                {"before": now - self.limits.window_s},
            )
            user_row, ip_row = (
                conn.execute(
                    text("INSERT INTO login_failures (key, at) VALUES (:key, :at) RETURNING id"),
                    {"key": key, "at": now},
                ).scalar_one()
                for key in (f"user:{username_key}", f"ip:{ip}")
            )
        return user_row, ip_row

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
        with self.db.write() as conn:
            conn.execute(
                text("DELETE FROM login_failures WHERE id IN (:user_row, :ip_row)"),
                {"user_row": attempt.user_row, "ip_row": attempt.ip_row},
            )

    def check_password(self, attempt: LoginAttempt, password: str) -> User:
        """Step 2: the argon2 check; raise LoginRefused, the same for any name.

        A failure stays counted (step 1 wrote it); a success clears the username's failures
        and this attempt's row for the address.
        """
        key = attempt.username_key
        row = None
        if USERNAME_RE.fullmatch(key) and len(password) <= MAX_PASSWORD:
            with self.db.read() as conn:
                row = conn.execute(
                    text("SELECT id, password_hash, disabled FROM users WHERE username = :name"),
                    {"name": key},
                ).first()
        ok = False
        if row is None:
            self._verify_dummy(password[:MAX_PASSWORD])
        else:
            try:
                ok = self.hasher.verify(row.password_hash, password)
            except (VerifyMismatchError, InvalidHashError, VerificationError):
                ok = False
        if not ok or row is None or row.disabled:
            raise LoginRefused(rate_limited=False)
        # Parameters were raised since this hash was made: upgrade it while we have the password.
        rehash = self.hasher.hash(password) if self.hasher.check_needs_rehash(row[1]) else None
        with self.db.write() as conn:
            conn.execute(
                text("DELETE FROM login_failures WHERE key = :key OR id = :ip_row"),
                {"key": f"user:{key}", "ip_row": attempt.ip_row},
            )
            if rehash is not None:
                conn.execute(
                    text("UPDATE users SET password_hash = :hash WHERE id = :id"),
                    {"hash": rehash, "id": row.id},
                )
        user = self.get_user_by_id(row.id)
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
        new = hash_token(token)
        with self.db.write() as conn:
            conn.execute(
                text(
                    "INSERT INTO sessions (token_hash, user_id, created_at, last_seen, expires_at,"
                    " client_ip) VALUES (:th, :user, :now, :now, :expires, :ip)"
                ),
                {"th": new, "user": user.id, "now": now, "expires": expires, "ip": client_ip},
            )
            others = conn.execute(
                text(
                    "SELECT token_hash FROM sessions WHERE user_id = :user AND token_hash <> :th"
                    " ORDER BY created_at DESC, token_hash"
                ),
                {"user": user.id, "th": new},
            ).scalars()
            # The new session always stays; the oldest others go beyond the cap.
            beyond = list(others)[max(0, self.policy.max_per_user - 1) :]
            if beyond:
                conn.execute(
                    text("DELETE FROM sessions WHERE token_hash IN :beyond").bindparams(
                        bindparam("beyond", expanding=True)
                    ),
                    {"beyond": beyond},
                )
        return NewSession(token=token, csrf_token=csrf_token_for(token), expires_at=expires)

    def session(self, token: str | None) -> Session | None:
        """The live session for a cookie value, or None if unknown, expired, idle or disabled."""
        if not token or len(token) > 128:
            return None
        th = hash_token(token)
        with self.db.read() as conn:
            row = conn.execute(
                text("SELECT user_id, last_seen, expires_at FROM sessions WHERE token_hash = :th"),
                {"th": th},
            ).first()
            user = _user_with_id(conn, row.user_id) if row is not None else None
        if row is None:
            return None
        now = self.clock()
        if now >= row.expires_at or now - row.last_seen >= self.policy.idle_s:
            with self.db.write() as conn:
                conn.execute(text("DELETE FROM sessions WHERE token_hash = :th"), {"th": th})
            return None
        if user is None or user.disabled:
            return None
        if now - row.last_seen >= self.policy.touch_every_s:
            with self.db.write() as conn:
                conn.execute(
                    text("UPDATE sessions SET last_seen = :now WHERE token_hash = :th"),
                    {"now": now, "th": th},
                )
        return Session(user=user, csrf_token=csrf_token_for(token), expires_at=row.expires_at)

    def end_session(self, token: str | None) -> None:
        """Log out: forget the session (no error if it was already gone)."""
        if token:
            with self.db.write() as conn:
                conn.execute(
                    text("DELETE FROM sessions WHERE token_hash = :th"), {"th": hash_token(token)}
                )

    def purge_expired(self) -> int:
        """Delete expired and idle sessions; returns how many. Run it now and then."""
        now = self.clock()
        with self.db.write() as conn:
            gone: int = conn.execute(
                text("DELETE FROM sessions WHERE expires_at <= :now OR last_seen <= :idle"),
                {"now": now, "idle": now - self.policy.idle_s},
            ).rowcount
        return gone


def _user_named(conn: Connection, username: str) -> User | None:
    row = conn.execute(
        text("SELECT id, username, disabled FROM users WHERE username = :name"),
        {"name": username.strip().lower()},
    ).first()
    return _load(conn, row) if row else None


def _user_with_id(conn: Connection, user_id: int) -> User | None:
    row = conn.execute(
        text("SELECT id, username, disabled FROM users WHERE id = :id"), {"id": user_id}
    ).first()
    return _load(conn, row) if row else None


def _load(conn: Connection, row: Sequence[Any]) -> User:
    found = conn.execute(text("SELECT area, role FROM grants WHERE user_id = :id"), {"id": row[0]})
    grants = tuple(Grant(Role.parse(role), area) for area, role in sorted(found.all()))
    return User(id=row[0], username=row[1], grants=grants, disabled=bool(row[2]))
