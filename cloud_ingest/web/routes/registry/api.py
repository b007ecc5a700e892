"""The registry's JSON API (/api/v1/registry/...): people, cards, devices, enrol mode.

Viewers read; managers edit the sites of their areas. Ids outside the user's areas answer
404, exactly like ids that do not exist, and lists never contain them.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse

from cloud_ingest.console.enrolment import card_uid_from_text
from cloud_ingest.console.erasure import erase_person
from cloud_ingest.console.exports import CSV_MEDIA_TYPE, iter_csv
from cloud_ingest.errors import RegistryEditError
from cloud_ingest.registry import queries as rc
from cloud_ingest.web import visibility as vis
from cloud_ingest.web.audit_trail import note
from cloud_ingest.web.deps import ScopeDep, ServiceDep
from cloud_ingest.web.schemas.errors import ERRORS
from cloud_ingest.web.schemas.registry import (
    PAGE_SIZE,
    AssignmentOut,
    AssignResult,
    CaptureAssign,
    CaptureId,
    CardAssign,
    CardDetail,
    CardOut,
    CardsPage,
    DeviceOut,
    DevicesPage,
    EnrolOut,
    EnrolStart,
    ErasureOut,
    NewPerson,
    PageQ,
    PeoplePage,
    PerPageQ,
    PersonDetail,
    PersonOut,
    PersonPatch,
    SiteQ,
    TextQ,
    UidOut,
)
from cloud_ingest.web.security import csrf_protect

router = APIRouter(tags=["registry"], dependencies=[Depends(csrf_protect)], responses=ERRORS)


def _tz(service: ServiceDep, site_id: str) -> str | None:
    """The site's time zone, for the local-time fields a page shows."""
    site = service.registry.site(site_id)
    return site.tz if site else None


@router.get("/api/v1/registry/people", response_model=PeoplePage)
def list_people(
    request: Request,
    scope: ScopeDep,
    service: ServiceDep,
    q: TextQ = "",
    site: SiteQ = None,
    page: PageQ = 1,
    per_page: PerPageQ = PAGE_SIZE,
) -> PeoplePage:
    """People of the sites in your areas, by id; `q` matches id or name."""
    result = rc.search_people(service.registry, scope.view, q, site, page, per_page)
    note(request, results=result.total, text=bool(q))
    items = [PersonOut.of(p) for p in result.rows if isinstance(p, rc.PersonRow)]
    return PeoplePage(total=result.total, page=page, per_page=per_page, items=items)


@router.get("/api/v1/registry/people.csv", response_class=StreamingResponse)
def export_people(
    request: Request, scope: ScopeDep, service: ServiceDep, q: TextQ = ""
) -> StreamingResponse:
    """Every person of your areas matching `q` as CSV, with site names (formulas neutralised)."""
    rows = list(rc.iter_people_export(service.registry, scope.view, q))
    note(request, results=len(rows), text=bool(q))
    body = iter_csv(
        (
            "人员编号 Person ID",
            "显示名 Display name",
            "站点编号 Site ID",
            "站点 Site",
            "站点(英文) Site (English)",
            "在用卡片 Active cards",
        ),
        [
            (p.person_id, p.display_name, p.site_id, p.site_name_zh, p.site_name_en, p.active_cards)
            for p in rows
        ],
    )
    return StreamingResponse(
        body,
        media_type=CSV_MEDIA_TYPE,
        headers={"Content-Disposition": 'attachment; filename="warmcard-people.csv"'},
    )


@router.post("/api/v1/registry/people", response_model=PersonOut, status_code=201)
def create_person(
    request: Request, body: NewPerson, scope: ScopeDep, service: ServiceDep
) -> PersonOut:
    """Add a person to a site you manage; the pseudonymous id is made by the server."""
    vis.require_edit(scope, body.site_id)
    try:
        person_id = rc.add_person(service.registry, body.display_name, body.site_id)
    except RegistryEditError as exc:
        raise vis.edit_error(exc) from None
    note(request, object=person_id, site=body.site_id)
    return PersonOut.of(vis.visible_person(service, scope, person_id))


@router.get("/api/v1/registry/people/{person_id}", response_model=PersonDetail)
def get_person(person_id: str, scope: ScopeDep, service: ServiceDep) -> PersonDetail:
    """A person, their cards and every card they held (history)."""
    person = vis.visible_person(service, scope, person_id)
    tz = _tz(service, person.site_id)
    return PersonDetail(
        person=PersonOut.of(person),
        cards=[CardOut.of(c) for c in rc.person_cards(service.registry, person.person_id)],
        history=[
            AssignmentOut.of(a, tz) for a in rc.person_history(service.registry, person.person_id)
        ],
    )


@router.patch("/api/v1/registry/people/{person_id}", response_model=PersonOut)
def patch_person(
    person_id: str, body: PersonPatch, scope: ScopeDep, service: ServiceDep
) -> PersonOut:
    """Rename a person or move them to another site (you must manage both sites)."""
    person = vis.editable_person(service, scope, person_id)
    if body.site_id is not None:
        vis.require_edit(scope, body.site_id)
    try:
        rc.update_person(service.registry, person.person_id, body.display_name, body.site_id)
    except RegistryEditError as exc:
        raise vis.edit_error(exc) from None
    return PersonOut.of(vis.visible_person(service, scope, person_id))


@router.post("/api/v1/registry/people/{person_id}/erase", response_model=ErasureOut)
def erase(request: Request, person_id: str, scope: ScopeDep, service: ServiceDep) -> ErasureOut:
    """Erase a person everywhere (admins of the person's area): docs/security.md."""
    person = vis.erasable_person(service, scope, person_id)
    try:
        done = erase_person(
            person.person_id,
            registry=service.registry,
            storage=service.query_storage,
            alerts=service.alerts.store,
            deadletters=service.deadletters,
            kiosks=service.kiosk_erasures,
        )
    except RegistryEditError as exc:
        raise vis.edit_error(exc) from None
    counts = done.counts()
    note(request, **counts)
    return ErasureOut(person_id=person.person_id, counts=counts)  # type: ignore[arg-type]


@router.get("/api/v1/registry/cards", response_model=CardsPage)
def list_cards(
    request: Request,
    scope: ScopeDep,
    service: ServiceDep,
    q: TextQ = "",
    site: SiteQ = None,
    active: bool | None = None,
    page: PageQ = 1,
    per_page: PerPageQ = PAGE_SIZE,
) -> CardsPage:
    """Cards whose holder is in your areas; `q` matches UID or person id."""
    result = rc.search_cards(service.registry, scope.view, q, site, active, page, per_page)
    note(request, results=result.total, text=bool(q))
    items = [CardOut.of(c) for c in result.rows if isinstance(c, rc.CardRow)]
    return CardsPage(total=result.total, page=page, per_page=per_page, items=items)


@router.get("/api/v1/registry/uid", response_model=UidOut)
def parse_uid(
    scope: ScopeDep,
    text: Annotated[str, Query(min_length=1, max_length=64)],
    order: Literal["le", "be"] = "le",
) -> UidOut:
    """The canonical UID for a typed or pasted card number (preview before assigning)."""
    try:
        return UidOut(card_uid=card_uid_from_text(text, order))
    except RegistryEditError as exc:
        raise vis.edit_error(exc) from None


@router.post("/api/v1/registry/cards", response_model=AssignResult)
def assign_card(
    request: Request, body: CardAssign, scope: ScopeDep, service: ServiceDep
) -> AssignResult:
    """Give a card (typed in any common form) to a person; a moved card keeps its history."""
    try:
        uid = card_uid_from_text(body.card, body.order)
    except RegistryEditError as exc:
        raise vis.edit_error(exc) from None
    card, previous = vis.assign_card(service, scope, uid, body.person_id)
    note(request, object=uid, person=body.person_id, moved_from=previous)
    return AssignResult(card=CardOut.of(card), previous_person_id=previous)


@router.get("/api/v1/registry/cards/{card_uid}", response_model=CardDetail)
def get_card(card_uid: str, scope: ScopeDep, service: ServiceDep) -> CardDetail:
    """A card, its holder and who held it before (holders in your areas only)."""
    card = vis.visible_card(service, scope, card_uid)
    history = rc.card_history(service.registry, scope.view, card.card_uid)
    tz = _tz(service, card.site_id)
    return CardDetail(card=CardOut.of(card), history=[AssignmentOut.of(a, tz) for a in history])


@router.post("/api/v1/registry/cards/{card_uid}/deactivate", response_model=CardOut)
def deactivate(card_uid: str, scope: ScopeDep, service: ServiceDep) -> CardOut:
    """Take a card out of use (lost or returned); it then taps as unknown."""
    card = vis.visible_card(service, scope, card_uid)
    vis.require_edit(scope, card.site_id)
    rc.deactivate_card(service.registry, card.card_uid)
    fresh = rc.get_card(service.registry, scope.view, card_uid)
    assert fresh is not None
    return CardOut.of(fresh)


@router.get("/api/v1/registry/devices", response_model=DevicesPage)
def list_devices(
    scope: ScopeDep,
    service: ServiceDep,
    q: TextQ = "",
    site: SiteQ = None,
    page: PageQ = 1,
    per_page: PerPageQ = PAGE_SIZE,
) -> DevicesPage:
    """Kiosks standing in your areas, with any running enrol window."""
    now = service.registry.clock()
    result = rc.search_devices(service.registry, scope.view, q, site, page, per_page, now)
    items = [
        DeviceOut.of(d, _tz(service, d.site_id)) for d in result.rows if isinstance(d, rc.DeviceRow)
    ]
    return DevicesPage(total=result.total, page=page, per_page=per_page, items=items)


@router.get("/api/v1/registry/devices/{device_id}", response_model=DeviceOut)
def get_device(device_id: str, scope: ScopeDep, service: ServiceDep) -> DeviceOut:
    device = vis.visible_device(service, scope, device_id)
    return DeviceOut.of(device, _tz(service, device.site_id))


@router.get("/api/v1/registry/devices/{device_id}/enrol", response_model=EnrolOut)
def enrol_state(device_id: str, scope: ScopeDep, service: ServiceDep) -> EnrolOut:
    """Enrol mode of a kiosk and the unknown cards tapped there since it started."""
    device = vis.visible_device(service, scope, device_id)
    return EnrolOut.of(service.enrol.state(device.device_id), _tz(service, device.site_id))


@router.post("/api/v1/registry/devices/{device_id}/enrol", response_model=EnrolOut)
def enrol_start(device_id: str, body: EnrolStart, scope: ScopeDep, service: ServiceDep) -> EnrolOut:
    """Turn enrol mode on for N minutes: the next unknown cards tapped there are offered."""
    device = vis.editable_device(service, scope, device_id)
    state = service.enrol.start(device.device_id, body.minutes, scope.user.username)
    return EnrolOut.of(state, _tz(service, device.site_id))


@router.delete("/api/v1/registry/devices/{device_id}/enrol", response_model=EnrolOut)
def enrol_stop(device_id: str, scope: ScopeDep, service: ServiceDep) -> EnrolOut:
    device = vis.editable_device(service, scope, device_id)
    return EnrolOut.of(service.enrol.stop(device.device_id), _tz(service, device.site_id))


@router.post("/api/v1/registry/enrol/captures/{capture_id}/assign", response_model=AssignResult)
def assign_capture(
    request: Request,
    capture_id: CaptureId,
    body: CaptureAssign,
    scope: ScopeDep,
    service: ServiceDep,
) -> AssignResult:
    """Give the card captured in enrol mode to a person (moving it from an earlier holder)."""
    capture = vis.visible_capture(service, scope, capture_id)
    card, previous = vis.assign_card(service, scope, capture.card_uid, body.person_id)
    note(request, card=capture.card_uid, person=body.person_id, moved_from=previous)
    return AssignResult(card=CardOut.of(card), previous_person_id=previous)
