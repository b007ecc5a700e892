"""Care in the console (关爱): a person's care flags and contact on their page, and the closure
calendar's areas, limited by the user's rights.

Flags are the keys of `[alerts.visit_due_days]`; a manager of the person's area sets or clears
them (`Action.MANAGE_CARE`), and the flag's time is when it was set. The contact (phone and
address) is shown only to roles with `Action.VIEW_CONTACTS`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from cloud_ingest.alerts.closures import Closure, Closures
from cloud_ingest.alerts.engine import AlertEngine
from cloud_ingest.console.roles import Action, User, can
from cloud_ingest.errors import AlertError
from cloud_ingest.registry import areas
from cloud_ingest.registry.contacts import Contact, contacts_of


@dataclass(frozen=True)
class FlagState:
    flag: str
    flagged_at: int | None  # None: not set


@dataclass(frozen=True)
class PersonCare:
    area_path: str
    flags: list[FlagState]
    contact: Contact | None  # None also when the user may not see it
    can_see_contact: bool
    can_edit: bool


def person_care(engine: AlertEngine, user: User, person_id: str, site_id: str) -> PersonCare:
    area = engine.area_of(site_id)
    have = {f: t for p, f, t in engine.store.flags() if p == person_id}
    flags = [FlagState(f, have.get(f)) for f in engine.settings.visit_due_days]
    see = can(user, Action.VIEW_CONTACTS, area)
    contact = contacts_of(engine.registry, [person_id]).get(person_id) if see else None
    return PersonCare(area, flags, contact, see, can(user, Action.MANAGE_CARE, area))


def set_flag(engine: AlertEngine, person_id: str, flag: str, active: bool) -> bool:
    """Set (flagged now) or clear one configured flag; True if it changed."""
    if flag not in engine.settings.visit_due_days:
        known = ", ".join(engine.settings.visit_due_days)
        raise AlertError(f"未知标记 unknown flag {flag!r}; use one of {known}")
    added, removed = engine.store.set_flags([(person_id, flag, active)], engine.clock())
    return bool(added or removed)


def closure_areas(user: User, site_paths: Iterable[str]) -> list[str]:
    """The areas the user may close: their managed grants and every area and site below them."""
    managed = [g.area for g in user.grants if can(user, Action.MANAGE_CARE, g.area)]
    found = set(managed)
    for path in site_paths:
        found.update(a for a in areas.ancestors(path) if any(areas.is_under(a, m) for m in managed))
    if areas.ROOT not in managed:
        found.discard(areas.ROOT)
    return sorted(found)


def visible_closures(engine: AlertEngine, user: User) -> list[tuple[Closure, bool]]:
    """Closures inside or above the user's areas, each with whether the user may delete it."""
    mine = [g.area for g in user.grants] if not user.disabled else []
    return [
        (c, can(user, Action.MANAGE_CARE, c.area_path))
        for c in Closures(engine.store).seen_from(mine)
    ]
