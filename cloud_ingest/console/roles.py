"""Who may do what where: roles granted on area paths, and the one check `can`.

A user holds one or more grants, each a role on an area path. Most roles form a ladder
(viewer < staff < manager < admin), each allowed what the one below it is; county finance
(finance) stands beside it: a viewer that may also set the county's subsidy rates, and nothing
a manager may. `can(user, action, area_path)` is true when some grant covers the object's area
(by whole path segments) with a role whose actions (`ROLE_ACTIONS`) include this one.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import IntEnum, StrEnum

from cloud_ingest.errors import AccountError
from cloud_ingest.registry import areas


class Role(IntEnum):
    """Ordered by reach (`top_role`); what each may do is `ROLE_ACTIONS`, not the number."""

    VIEWER = 1
    FINANCE = 2  # county finance: reports and meal sheets, and the county's subsidy rates
    STAFF = 3  # canteen staff: a viewer who may also record a meal by hand (补录)
    MANAGER = 4
    ADMIN = 5

    @property
    def label(self) -> str:
        return self.name.lower()

    @classmethod
    def parse(cls, text: str) -> Role:
        try:
            return cls[text.strip().upper()]
        except KeyError:
            raise AccountError(f"未知角色 unknown role {text!r}; use {ROLE_LIST}") from None


ROLE_LIST = "viewer, finance, staff, manager or admin"
ROLE_NAMES: dict[Role, tuple[str, str]] = {
    Role.VIEWER: ("查看员", "Viewer"),
    Role.FINANCE: ("县财政", "County finance"),
    Role.STAFF: ("食堂员工", "Canteen staff"),
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
    RECORD_MEAL = "record_meal"  # canteen staff record a meal by hand (补录) at their site
    SET_SUBSIDY = "set_subsidy"  # the county's subsidy category and yuan per meal
    VIEW_CONTACTS = "view_contacts"  # a person's phone and address (the watcher's visit)
    MANAGE_CARE = "manage_care"  # care flags, contacts, the closure calendar


# Finance and staff see what a viewer sees, but not people's phones and addresses.
_VIEWER = frozenset({Action.VIEW, Action.EXPORT, Action.RECORD_VISIT, Action.VIEW_CONTACTS})
_READER = _VIEWER - {Action.VIEW_CONTACTS}
_STAFF = _READER | {Action.RECORD_MEAL}
_MANAGER = _VIEWER | {
    Action.RECORD_MEAL,
    Action.ACK_ALERT,
    Action.EDIT_REGISTRY,
    Action.MANAGE_NOTIFY,
    Action.MANAGE_CARE,
}
ROLE_ACTIONS: dict[Role, frozenset[Action]] = {
    Role.VIEWER: _VIEWER,
    Role.FINANCE: _READER | {Action.SET_SUBSIDY},
    Role.STAFF: _STAFF,
    Role.MANAGER: _MANAGER,
    Role.ADMIN: frozenset(Action),
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

    @property
    def is_admin(self) -> bool:
        """True when some grant is an admin one (the users page is theirs)."""
        return any(g.role is Role.ADMIN for g in self.grants)

    def role_at(self, area_path: str) -> Role | None:
        """The highest role any grant gives on this area path, or None."""
        return max((g.role for g in self.grants if areas.is_under(area_path, g.area)), default=None)


def can(user: User | None, action: Action, area_path: str) -> bool:
    """True if `user` may do `action` on an object in `area_path` (segment-wise containment)."""
    if user is None or user.disabled:
        return False
    return any(
        action in ROLE_ACTIONS[g.role] for g in user.grants if areas.is_under(area_path, g.area)
    )


def view_areas(user: User) -> list[str]:
    """Every area the user may view (any grant allows viewing); none for a disabled user."""
    return [g.area for g in user.grants] if not user.disabled else []


def sites_allowed(
    user: User, action: Action, site_ids: Iterable[str], site_paths: Mapping[str, str]
) -> frozenset[str]:
    """The sites among `site_ids` on which `user` may do `action` (unplaced: at the root)."""
    return frozenset(s for s in site_ids if can(user, action, areas.place_of(s, site_paths)))
