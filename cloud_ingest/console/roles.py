"""Who may do what where: roles granted on area paths, and the one check `can`.

A user holds one or more grants, each a role (viewer < manager < admin) on an area path.
`can(user, action, area_path)` is true when some grant covers the object's area (by whole
path segments) with a role high enough for the action.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import IntEnum, StrEnum

from cloud_ingest.errors import AccountError
from cloud_ingest.registry import areas


class Role(IntEnum):
    """Ordered: a higher role may do everything a lower one may."""

    VIEWER = 1
    MANAGER = 2
    ADMIN = 3

    @property
    def label(self) -> str:
        return self.name.lower()

    @classmethod
    def parse(cls, text: str) -> Role:
        try:
            return cls[text.strip().upper()]
        except KeyError:
            raise AccountError(
                f"未知角色 unknown role {text!r}; use viewer, manager or admin"
            ) from None


ROLE_NAMES: dict[Role, tuple[str, str]] = {
    Role.VIEWER: ("查看员", "Viewer"),
    Role.MANAGER: ("管理员", "Manager"),
    Role.ADMIN: ("系统管理员", "Administrator"),
}


class Action(StrEnum):
    """What a console route does to an object; each needs a minimum role on the object's area."""

    VIEW = "view"  # pages, live figures, alerts
    EXPORT = "export"  # monthly reports, CSV/XLSX
    ACK_ALERT = "ack_alert"  # mark a well-being or anti-fraud alert handled
    RECORD_VISIT = "record_visit"  # a watcher records a well-being visit (closes visit-due)
    EDIT_REGISTRY = "edit_registry"  # people, cards, devices, sites
    MANAGE_USERS = "manage_users"  # accounts and grants inside the area
    MANAGE_AREAS = "manage_areas"  # the hierarchy itself
    ERASE_PERSON = "erase_person"  # erase a person's personal data everywhere (PIPL)
    MANAGE_NOTIFY = "manage_notify"  # the area's notification targets and their delivery log
    VIEW_CONTACTS = "view_contacts"  # a person's phone and address (the watcher's visit)
    MANAGE_CARE = "manage_care"  # care flags, contacts, the closure calendar


ACTION_ROLE: dict[Action, Role] = {
    Action.VIEW: Role.VIEWER,
    Action.EXPORT: Role.VIEWER,
    Action.ACK_ALERT: Role.MANAGER,
    Action.RECORD_VISIT: Role.VIEWER,
    Action.EDIT_REGISTRY: Role.MANAGER,
    Action.MANAGE_USERS: Role.ADMIN,
    Action.MANAGE_AREAS: Role.ADMIN,
    Action.ERASE_PERSON: Role.ADMIN,
    Action.MANAGE_NOTIFY: Role.MANAGER,
    Action.VIEW_CONTACTS: Role.VIEWER,
    Action.MANAGE_CARE: Role.MANAGER,
}
# Actions held by these roles only, not by rank: a role added later (finance, staff) must be
# listed here to see contacts, whatever its place in the order.
ACTION_ROLES: dict[Action, frozenset[Role]] = {
    Action.VIEW_CONTACTS: frozenset({Role.VIEWER, Role.MANAGER, Role.ADMIN}),
}


@dataclass(frozen=True)
class Grant:
    role: Role
    area: str


@dataclass(frozen=True)
class User:
    id: int
    username: str
    grants: tuple[Grant, ...]
    disabled: bool = False

    @property
    def top_role(self) -> Role | None:
        return max((g.role for g in self.grants), default=None)

    def role_at(self, area_path: str) -> Role | None:
        """The highest role any grant gives on this area path, or None."""
        return max((g.role for g in self.grants if areas.is_under(area_path, g.area)), default=None)


def can(user: User | None, action: Action, area_path: str) -> bool:
    """True if `user` may do `action` on an object in `area_path` (segment-wise containment)."""
    if user is None or user.disabled:
        return False
    only = ACTION_ROLES.get(action)
    if only is not None:
        return any(g.role in only and areas.is_under(area_path, g.area) for g in user.grants)
    role = user.role_at(area_path)
    return role is not None and role >= ACTION_ROLE[action]


def view_areas(user: User) -> list[str]:
    """Every area the user may view (any grant allows viewing); none for a disabled user."""
    return [g.area for g in user.grants] if not user.disabled else []


def sites_allowed(
    user: User, action: Action, site_ids: Iterable[str], site_paths: Mapping[str, str]
) -> frozenset[str]:
    """The sites among `site_ids` on which `user` may do `action` (unplaced: at the root)."""
    return frozenset(s for s in site_ids if can(user, action, areas.place_of(s, site_paths)))
