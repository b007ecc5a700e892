"""User administration by an admin in the console: who may change which user, and the changes.

The rule (docs/console-access.md, "User administration in the console"):

- An admin administers the areas where they hold the admin role (and everything below them).
- They may see and change a user only if **every** grant of that user lies inside those areas.
  A user with a grant elsewhere (say on the county, for a township admin) is someone else's to
  manage, and is answered 404 like a user that does not exist. A user with no grant left is
  managed only by an admin of the whole hierarchy (`/`).
- A new grant, a changed one and a revoked one must be on an area inside those areas.
- Nobody changes their own account here (no self-disable, self-demotion or self-revocation):
  another admin does, or `warmcard user` on the server.
- A change never takes away the last enabled admin on `/` (where there is one).

Refusals raise `UserAdminRefused` with the HTTP status the console answers (403 or 404).
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable

from cloud_ingest.console.accounts import AccountStore
from cloud_ingest.console.passwords import check_password_policy
from cloud_ingest.console.roles import Action, Grant, Role, User, can
from cloud_ingest.errors import AccountError, AreaError
from cloud_ingest.registry import areas


class UserAdminRefused(AccountError):
    """The admin may not do this; `status` is 404 (not theirs to see) or 403 (seen, not allowed)."""

    def __init__(self, status: int, message: str) -> None:
        self.status = status
        super().__init__(message)


NOT_YOURS = "未找到 Not found"
SELF = (
    "不能修改自己的账户，请另一位管理员操作 You cannot change your own account; ask another admin"
)
LAST_ROOT = (
    "至少须保留一位全区域（/）的系统管理员 At least one enabled administrator of the whole "
    "hierarchy (/) must remain"
)
AREA_NOT_YOURS = "此区域不在您的管理范围内 This area is outside the areas you administer"


def admin_areas(actor: User) -> list[str]:
    """The areas `actor` administers (an admin grant), none when disabled."""
    if actor.disabled:
        return []
    return [g.area for g in actor.grants if g.role >= Role.ADMIN]


def may_administer_area(actor: User, area: str) -> bool:
    return can(actor, Action.MANAGE_USERS, area)


def may_manage(actor: User, target: User) -> bool:
    """True when every grant of `target` lies inside the areas `actor` administers."""
    if not target.grants:
        return may_administer_area(actor, areas.ROOT)
    return all(may_administer_area(actor, g.area) for g in target.grants)


def visible_users(actor: User, users: Iterable[User]) -> list[User]:
    """The users `actor` may see and change, in the given order."""
    return [u for u in users if may_manage(actor, u)]


def generate_password(username: str) -> str:
    """A random one-time password that passes the policy (about 96 bits)."""
    while True:
        candidate = secrets.token_urlsafe(12)
        try:
            check_password_policy(candidate, username)
        except AccountError:
            continue
        return candidate


class UserAdmin:
    """The changes an admin makes in the console, each checked against the rule above."""

    def __init__(self, store: AccountStore, actor: User) -> None:
        self.store = store
        self.actor = actor

    def users(self) -> list[User]:
        return visible_users(self.actor, self.store.list_users())

    def target(self, username: str) -> User:
        """The user named, if the actor may manage them; else 404 as if it did not exist."""
        user = self.store.get_user(username)
        if user is None or not may_manage(self.actor, user):
            raise UserAdminRefused(404, NOT_YOURS)
        return user

    def _changeable(self, username: str) -> User:
        user = self.target(username)
        if user.id == self.actor.id:
            raise UserAdminRefused(403, SELF)
        return user

    def _area(self, text: str) -> str:
        """An area the actor administers: 404 if unknown or unseen, 403 if seen, not theirs."""
        try:
            path = areas.parse_path(text)
        except AreaError:
            raise UserAdminRefused(404, NOT_YOURS) from None
        if path != areas.ROOT:
            with self.store.db.read() as conn:
                if areas.get_area(conn, path) is None:
                    raise UserAdminRefused(404, NOT_YOURS)
        if not may_administer_area(self.actor, path):
            seen = can(self.actor, Action.VIEW, path)
            raise UserAdminRefused(403 if seen else 404, AREA_NOT_YOURS if seen else NOT_YOURS)
        return path

    def _keep_a_root_admin(self, before: User, after: User) -> None:
        """Refuse a change that takes away the last enabled admin on `/`. A deployment whose
        top admins hold a prefecture (no admin on `/` at all) has none to lose: its changes to
        other users go through."""

        def root_admin(u: User) -> bool:
            return not u.disabled and can(u, Action.MANAGE_AREAS, areas.ROOT)

        if not root_admin(before) or root_admin(after):
            return
        others = [u for u in self.store.list_users() if u.id != after.id and root_admin(u)]
        if not others:
            raise UserAdminRefused(403, LAST_ROOT)

    def create(
        self, username: str, role: Role, area: str, password: str | None
    ) -> tuple[User, str]:
        """A new user with one grant; returns the user and the password (generated if None)."""
        path = self._area(area)
        name = username.strip().lower()
        chosen = password or generate_password(name)
        return self.store.add_user(name, chosen, role, path), chosen

    def grant(self, username: str, role: Role, area: str) -> User:
        user = self._changeable(username)
        path = self._area(area)
        kept = tuple(g for g in user.grants if g.area != path)
        self._keep_a_root_admin(user, _with_grants(user, (*kept, Grant(role, path))))
        return self.store.grant(user.username, role, path)

    def revoke(self, username: str, area: str) -> User:
        user = self._changeable(username)
        path = self._area(area)
        self._keep_a_root_admin(
            user, _with_grants(user, tuple(g for g in user.grants if g.area != path))
        )
        return self.store.revoke(user.username, path)

    def set_disabled(self, username: str, disabled: bool) -> User:
        user = self._changeable(username)
        if disabled:
            self._keep_a_root_admin(user, _with_grants(user, user.grants, disabled=True))
        self.store.set_disabled(user.username, disabled)
        return self.target(user.username)

    def reset_password(self, username: str, password: str | None) -> str:
        """Set the given password, or a generated one; returns it. Ends the user's sessions."""
        user = self._changeable(username)
        chosen = password or generate_password(user.username)
        self.store.set_password(user.username, chosen)
        return chosen


def _with_grants(user: User, grants: tuple[Grant, ...], disabled: bool | None = None) -> User:
    return User(
        id=user.id,
        username=user.username,
        grants=grants,
        disabled=user.disabled if disabled is None else disabled,
    )
