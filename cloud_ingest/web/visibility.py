"""Which registry sites a console user may see or edit, and the registry objects inside them.

A site is placed in the hierarchy by the console's `areas` table. A site the table does not
place is treated as lying at the root: only users granted the whole hierarchy ('/') see it.
An object outside the user's sites answers 404, exactly like one that does not exist; a visible
one the user may not edit answers 403. The registry's JSON API and its pages share these rules.
"""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import HTTPException, status

from cloud_ingest.console.enrolment import Capture
from cloud_ingest.console.roles import Action, User, can, sites_allowed
from cloud_ingest.db import Database
from cloud_ingest.errors import CardInUse, RegistryEditError
from cloud_ingest.registry import areas
from cloud_ingest.registry import queries as rc
from cloud_ingest.registry.store import Registry
from cloud_ingest.service import ConsoleService
from cloud_ingest.web.security import FORBIDDEN, NOT_FOUND


@dataclass(frozen=True)
class Scope:
    """The user and the site ids they may view, export and edit in the registry."""

    user: User
    view: frozenset[str]
    edit: frozenset[str]
    paths: dict[str, str]


def scope_for(user: User, console: Database, registry: Registry) -> Scope:
    with console.read() as conn:
        placed = areas.site_paths(conn)
    paths = {s.site_id: areas.place_of(s.site_id, placed) for s in registry.sites()}
    view = sites_allowed(user, Action.VIEW, paths, placed)
    edit = sites_allowed(user, Action.EDIT_REGISTRY, paths, placed)
    return Scope(user, view, edit, paths)


def not_found() -> HTTPException:
    return HTTPException(status.HTTP_404_NOT_FOUND, NOT_FOUND)


def require_edit(scope: Scope, site_id: str) -> None:
    """404 for a site the user cannot see (or that does not exist), 403 if only visible."""
    if site_id not in scope.view:
        raise not_found()
    if site_id not in scope.edit:
        raise HTTPException(status.HTTP_403_FORBIDDEN, FORBIDDEN)


def visible_person(service: ConsoleService, scope: Scope, person_id: str) -> rc.PersonRow:
    person = rc.get_person(service.registry, scope.view, person_id)
    if person is None:
        raise not_found()
    return person


def editable_person(service: ConsoleService, scope: Scope, person_id: str) -> rc.PersonRow:
    person = visible_person(service, scope, person_id)
    require_edit(scope, person.site_id)
    return person


def erasable_person(service: ConsoleService, scope: Scope, person_id: str) -> rc.PersonRow:
    """A person the user may erase: an admin of the area of the person's site (else 403)."""
    person = visible_person(service, scope, person_id)
    if not can(scope.user, Action.ERASE_PERSON, scope.paths.get(person.site_id, areas.ROOT)):
        raise HTTPException(status.HTTP_403_FORBIDDEN, FORBIDDEN)
    return person


def visible_card(service: ConsoleService, scope: Scope, card_uid: str) -> rc.CardRow:
    card = rc.get_card(service.registry, scope.view, card_uid)
    if card is None:
        raise not_found()
    return card


def visible_device(service: ConsoleService, scope: Scope, device_id: str) -> rc.DeviceRow:
    device = rc.get_device(service.registry, scope.view, device_id, service.registry.clock())
    if device is None:
        raise not_found()
    return device


def editable_device(service: ConsoleService, scope: Scope, device_id: str) -> rc.DeviceRow:
    device = visible_device(service, scope, device_id)
    require_edit(scope, device.site_id)
    return device


def visible_capture(service: ConsoleService, scope: Scope, capture_id: int) -> Capture:
    capture = service.enrol.capture(capture_id)
    if capture is None:
        raise not_found()
    visible_device(service, scope, capture.device_id)
    return capture


def edit_error(exc: RegistryEditError) -> HTTPException:
    """A refused registry edit as an answer: 409 for a card held elsewhere, else 400."""
    code = status.HTTP_409_CONFLICT if isinstance(exc, CardInUse) else 400
    return HTTPException(code, str(exc))


def assign_card(
    service: ConsoleService, scope: Scope, uid: str, person_id: str
) -> tuple[rc.CardRow, str | None]:
    """Give the card to a person the user may edit; the card and its earlier holder, if shown."""
    person = editable_person(service, scope, person_id)
    try:
        previous = rc.assign_card(service.registry, uid, person.person_id, scope.edit)
    except RegistryEditError as exc:
        raise edit_error(exc) from None
    card = rc.get_card(service.registry, scope.view, uid)
    assert card is not None
    shown = previous.person_id if previous and previous.site_id in scope.view else None
    return card, shown
