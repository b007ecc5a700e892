"""Registry pages (/registry/...) and JSON (/api/v1/registry/...): people, cards, devices, enrol.

Mount with ``app.include_router(registry.router)`` on an app set up with `configure_auth`.
Viewers read; managers edit the sites of their areas. Ids outside the user's areas answer
404, exactly like ids that do not exist, and lists never contain them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, HTTPException, Path, Query, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from pydantic import BaseModel, Field

from cloud_ingest import i18n
from cloud_ingest.console.enrolment import Capture, EnrolState, card_uid_from_text
from cloud_ingest.console.exports import CSV_MEDIA_TYPE, iter_csv
from cloud_ingest.errors import CardInUse, RegistryEditError
from cloud_ingest.registry import queries as rc
from cloud_ingest.service import IngestService
from cloud_ingest.web import pages
from cloud_ingest.web.deps import Service
from cloud_ingest.web.security import (
    FORBIDDEN,
    NOT_FOUND,
    SessionDep,
    csrf_protect,
)
from cloud_ingest.web.visibility import Scope, ScopeDep
from warmcard.timestamps import format_ts


class ErrorOut(BaseModel):
    """What every refusal carries: zh-CN first, English beside it."""

    detail: str


ERRORS: dict[int | str, dict[str, object]] = {
    400: {"model": ErrorOut, "description": "bad value (e.g. an unreadable card number)"},
    401: {"model": ErrorOut, "description": "not logged in"},
    403: {"model": ErrorOut, "description": "role too low, or CSRF token missing"},
    404: {"model": ErrorOut, "description": "no such id in your areas"},
    409: {"model": ErrorOut, "description": "card held in another area"},
}

router = APIRouter(tags=["registry"], dependencies=[Depends(csrf_protect)], responses=ERRORS)
PAGE_SIZE = 50

# ---------------------------------------------------------------------------------- models


class PersonOut(BaseModel):
    person_id: str
    display_name: str
    site_id: str
    active_cards: int


class CardOut(BaseModel):
    card_uid: str
    person_id: str
    site_id: str
    active: bool


class AssignmentOut(BaseModel):
    card_uid: str
    person_id: str
    valid_from: str | None = Field(description="UTC; null = before history was kept")
    valid_to: str | None = Field(description="UTC, exclusive; null = holds it now")


class DeviceOut(BaseModel):
    device_id: str
    site_id: str
    mode: str
    debounce_s: float
    enrol_until: str | None


class PeoplePage(BaseModel):
    total: int
    page: int
    per_page: int
    items: list[PersonOut]


class CardsPage(BaseModel):
    total: int
    page: int
    per_page: int
    items: list[CardOut]


class DevicesPage(BaseModel):
    total: int
    page: int
    per_page: int
    items: list[DeviceOut]


class PersonDetail(BaseModel):
    person: PersonOut
    cards: list[CardOut]
    history: list[AssignmentOut]


class CardDetail(BaseModel):
    card: CardOut
    history: list[AssignmentOut]


class NewPerson(BaseModel):
    display_name: str = Field(min_length=1, max_length=64)
    site_id: str = Field(min_length=1, max_length=63)


class PersonPatch(BaseModel):
    display_name: str | None = Field(default=None, min_length=1, max_length=64)
    site_id: str | None = Field(default=None, min_length=1, max_length=63)


class CardAssign(BaseModel):
    card: str = Field(
        min_length=1,
        max_length=64,
        description="UID in hex (04:A1:B2:C3, 04a1b2c3) or the 10-digit number on the card",
        examples=["04:A1:B2:C3", "3283263748"],
    )
    person_id: str = Field(min_length=1, max_length=64)
    order: Literal["le", "be"] = Field(
        default="le", description="byte order of a 10-digit number (le for most readers)"
    )


class AssignResult(BaseModel):
    card: CardOut
    previous_person_id: str | None = Field(description="the earlier holder, if you may see them")


class CaptureOut(BaseModel):
    capture_id: int
    card_uid: str
    ts: str
    known: bool


class EnrolOut(BaseModel):
    device_id: str
    active: bool
    started_at: str | None
    until: str | None
    captures: list[CaptureOut]


class EnrolStart(BaseModel):
    minutes: int = Field(default=10, ge=1, le=120)


class CaptureAssign(BaseModel):
    person_id: str = Field(min_length=1, max_length=64)


class UidOut(BaseModel):
    card_uid: str


def _ts(us: int | None) -> str | None:
    return format_ts(us) if us is not None else None


def _person(p: rc.PersonRow) -> PersonOut:
    return PersonOut(
        person_id=p.person_id,
        display_name=p.display_name,
        site_id=p.site_id,
        active_cards=p.active_cards,
    )


def _card(c: rc.CardRow) -> CardOut:
    return CardOut(card_uid=c.card_uid, person_id=c.person_id, site_id=c.site_id, active=c.active)


def _assignment(a: rc.Assignment) -> AssignmentOut:
    return AssignmentOut(
        card_uid=a.card_uid,
        person_id=a.person_id,
        valid_from=_ts(a.valid_from_us),
        valid_to=_ts(a.valid_to_us),
    )


def _device(d: rc.DeviceRow) -> DeviceOut:
    return DeviceOut(
        device_id=d.device_id,
        site_id=d.site_id,
        mode=d.mode,
        debounce_s=d.debounce_s,
        enrol_until=_ts(d.enrol_until_us),
    )


def _enrol(state: EnrolState) -> EnrolOut:
    return EnrolOut(
        device_id=state.device_id,
        active=state.active,
        started_at=_ts(state.started_us),
        until=_ts(state.until_us),
        captures=[
            CaptureOut(
                capture_id=c.capture_id, card_uid=c.card_uid, ts=format_ts(c.ts_us), known=c.known
            )
            for c in state.captures
        ],
    )


# --------------------------------------------------------------------------- access rules


def _not_found() -> HTTPException:
    return HTTPException(status.HTTP_404_NOT_FOUND, NOT_FOUND)


def _require_edit(scope: Scope, site_id: str) -> None:
    """404 for a site the user cannot see (or that does not exist), 403 if only visible."""
    if site_id not in scope.view:
        raise _not_found()
    if site_id not in scope.edit:
        raise HTTPException(status.HTTP_403_FORBIDDEN, FORBIDDEN)


def _visible_person(service: IngestService, scope: Scope, person_id: str) -> rc.PersonRow:
    person = rc.get_person(service.registry, scope.view, person_id)
    if person is None:
        raise _not_found()
    return person


def _editable_person(service: IngestService, scope: Scope, person_id: str) -> rc.PersonRow:
    person = _visible_person(service, scope, person_id)
    _require_edit(scope, person.site_id)
    return person


def _visible_card(service: IngestService, scope: Scope, card_uid: str) -> rc.CardRow:
    card = rc.get_card(service.registry, scope.view, card_uid)
    if card is None:
        raise _not_found()
    return card


def _visible_device(service: IngestService, scope: Scope, device_id: str) -> rc.DeviceRow:
    device = rc.get_device(service.registry, scope.view, device_id, service.registry.clock())
    if device is None:
        raise _not_found()
    return device


def _editable_device(service: IngestService, scope: Scope, device_id: str) -> rc.DeviceRow:
    device = _visible_device(service, scope, device_id)
    _require_edit(scope, device.site_id)
    return device


def _edit_error(exc: RegistryEditError) -> HTTPException:
    code = status.HTTP_409_CONFLICT if isinstance(exc, CardInUse) else 400
    return HTTPException(code, str(exc))


def _do_assign(
    service: IngestService, scope: Scope, uid: str, person_id: str
) -> tuple[rc.CardRow, str | None]:
    person = _editable_person(service, scope, person_id)
    try:
        previous = rc.assign_card(service.registry, uid, person.person_id, scope.edit)
    except RegistryEditError as exc:
        raise _edit_error(exc) from None
    card = rc.get_card(service.registry, scope.view, uid)
    assert card is not None
    shown = previous.person_id if previous and previous.site_id in scope.view else None
    return card, shown


def _visible_capture(service: IngestService, scope: Scope, capture_id: int) -> Capture:
    capture = service.enrol.capture(capture_id)
    if capture is None:
        raise _not_found()
    _visible_device(service, scope, capture.device_id)
    return capture


# ------------------------------------------------------------------------------ JSON API

PageQ = Annotated[int, Query(ge=1, le=100_000)]
CaptureId = Annotated[int, Path(ge=1, le=2**63 - 1)]  # SQLite INTEGER range
PerPageQ = Annotated[int, Query(ge=1, le=rc.MAX_PER_PAGE)]
TextQ = Annotated[str, Query(max_length=100)]


@router.get("/api/v1/registry/people", response_model=PeoplePage)
def list_people(
    scope: ScopeDep,
    service: Service,
    q: TextQ = "",
    site: Annotated[str | None, Query(max_length=63)] = None,
    page: PageQ = 1,
    per_page: PerPageQ = PAGE_SIZE,
) -> PeoplePage:
    """People of the sites in your areas, by id; `q` matches id or name."""
    result = rc.search_people(service.registry, scope.view, q, site, page, per_page)
    items = [_person(p) for p in result.rows if isinstance(p, rc.PersonRow)]
    return PeoplePage(total=result.total, page=page, per_page=per_page, items=items)


@router.get("/api/v1/registry/people.csv", response_class=StreamingResponse)
def export_people(scope: ScopeDep, service: Service, q: TextQ = "") -> StreamingResponse:
    """The people list as CSV (names neutralised against spreadsheet formulas)."""
    rows = rc.search_people(service.registry, scope.view, q, None, 1, 10**9).rows
    body = iter_csv(
        ("人员编号 Person ID", "显示名 Display name", "站点 Site", "在用卡片 Active cards"),
        [
            (p.person_id, p.display_name, p.site_id, p.active_cards)
            for p in rows
            if isinstance(p, rc.PersonRow)
        ],
    )
    return StreamingResponse(
        body,
        media_type=CSV_MEDIA_TYPE,
        headers={"Content-Disposition": 'attachment; filename="warmcard-people.csv"'},
    )


@router.post("/api/v1/registry/people", response_model=PersonOut, status_code=201)
def create_person(body: NewPerson, scope: ScopeDep, service: Service) -> PersonOut:
    """Add a person to a site you manage; the pseudonymous id is made by the server."""
    _require_edit(scope, body.site_id)
    try:
        person_id = rc.add_person(service.registry, body.display_name, body.site_id)
    except RegistryEditError as exc:
        raise _edit_error(exc) from None
    return _person(_visible_person(service, scope, person_id))


@router.get("/api/v1/registry/people/{person_id}", response_model=PersonDetail)
def get_person(person_id: str, scope: ScopeDep, service: Service) -> PersonDetail:
    """A person, their cards and every card they held (history)."""
    person = _visible_person(service, scope, person_id)
    return PersonDetail(
        person=_person(person),
        cards=[_card(c) for c in rc.person_cards(service.registry, person.person_id)],
        history=[_assignment(a) for a in rc.person_history(service.registry, person.person_id)],
    )


@router.patch("/api/v1/registry/people/{person_id}", response_model=PersonOut)
def patch_person(person_id: str, body: PersonPatch, scope: ScopeDep, service: Service) -> PersonOut:
    """Rename a person or move them to another site (you must manage both sites)."""
    person = _editable_person(service, scope, person_id)
    if body.site_id is not None:
        _require_edit(scope, body.site_id)
    try:
        rc.update_person(service.registry, person.person_id, body.display_name, body.site_id)
    except RegistryEditError as exc:
        raise _edit_error(exc) from None
    return _person(_visible_person(service, scope, person_id))


@router.get("/api/v1/registry/cards", response_model=CardsPage)
def list_cards(
    scope: ScopeDep,
    service: Service,
    q: TextQ = "",
    site: Annotated[str | None, Query(max_length=63)] = None,
    active: bool | None = None,
    page: PageQ = 1,
    per_page: PerPageQ = PAGE_SIZE,
) -> CardsPage:
    """Cards whose holder is in your areas; `q` matches UID or person id."""
    result = rc.search_cards(service.registry, scope.view, q, site, active, page, per_page)
    items = [_card(c) for c in result.rows if isinstance(c, rc.CardRow)]
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
        raise _edit_error(exc) from None


@router.post("/api/v1/registry/cards", response_model=AssignResult)
def assign_card(body: CardAssign, scope: ScopeDep, service: Service) -> AssignResult:
    """Give a card (typed in any common form) to a person; a moved card keeps its history."""
    try:
        uid = card_uid_from_text(body.card, body.order)
    except RegistryEditError as exc:
        raise _edit_error(exc) from None
    card, previous = _do_assign(service, scope, uid, body.person_id)
    return AssignResult(card=_card(card), previous_person_id=previous)


@router.get("/api/v1/registry/cards/{card_uid}", response_model=CardDetail)
def get_card(card_uid: str, scope: ScopeDep, service: Service) -> CardDetail:
    """A card, its holder and who held it before (holders in your areas only)."""
    card = _visible_card(service, scope, card_uid)
    history = rc.card_history(service.registry, scope.view, card.card_uid)
    return CardDetail(card=_card(card), history=[_assignment(a) for a in history])


@router.post("/api/v1/registry/cards/{card_uid}/deactivate", response_model=CardOut)
def deactivate(card_uid: str, scope: ScopeDep, service: Service) -> CardOut:
    """Take a card out of use (lost or returned); it then taps as unknown."""
    card = _visible_card(service, scope, card_uid)
    _require_edit(scope, card.site_id)
    rc.deactivate_card(service.registry, card.card_uid)
    fresh = rc.get_card(service.registry, scope.view, card_uid)
    assert fresh is not None
    return _card(fresh)


@router.get("/api/v1/registry/devices", response_model=DevicesPage)
def list_devices(
    scope: ScopeDep,
    service: Service,
    q: TextQ = "",
    site: Annotated[str | None, Query(max_length=63)] = None,
    page: PageQ = 1,
    per_page: PerPageQ = PAGE_SIZE,
) -> DevicesPage:
    """Kiosks standing in your areas, with any running enrol window."""
    now = service.registry.clock()
    result = rc.search_devices(service.registry, scope.view, q, site, page, per_page, now)
    items = [_device(d) for d in result.rows if isinstance(d, rc.DeviceRow)]
    return DevicesPage(total=result.total, page=page, per_page=per_page, items=items)


@router.get("/api/v1/registry/devices/{device_id}", response_model=DeviceOut)
def get_device(device_id: str, scope: ScopeDep, service: Service) -> DeviceOut:
    return _device(_visible_device(service, scope, device_id))


@router.get("/api/v1/registry/devices/{device_id}/enrol", response_model=EnrolOut)
def enrol_state(device_id: str, scope: ScopeDep, service: Service) -> EnrolOut:
    """Enrol mode of a kiosk and the unknown cards tapped there since it started."""
    device = _visible_device(service, scope, device_id)
    return _enrol(service.enrol.state(device.device_id))


@router.post("/api/v1/registry/devices/{device_id}/enrol", response_model=EnrolOut)
def enrol_start(device_id: str, body: EnrolStart, scope: ScopeDep, service: Service) -> EnrolOut:
    """Turn enrol mode on for N minutes: the next unknown cards tapped there are offered."""
    device = _editable_device(service, scope, device_id)
    return _enrol(service.enrol.start(device.device_id, body.minutes, scope.user.username))


@router.delete("/api/v1/registry/devices/{device_id}/enrol", response_model=EnrolOut)
def enrol_stop(device_id: str, scope: ScopeDep, service: Service) -> EnrolOut:
    device = _editable_device(service, scope, device_id)
    return _enrol(service.enrol.stop(device.device_id))


@router.post("/api/v1/registry/enrol/captures/{capture_id}/assign", response_model=AssignResult)
def assign_capture(
    capture_id: CaptureId, body: CaptureAssign, scope: ScopeDep, service: Service
) -> AssignResult:
    """Give the card captured in enrol mode to a person."""
    capture = _visible_capture(service, scope, capture_id)
    card, previous = _do_assign(service, scope, capture.card_uid, body.person_id)
    return AssignResult(card=_card(card), previous_person_id=previous)


# --------------------------------------------------------------------------------- pages


@dataclass(frozen=True)
class Paging:
    page: int
    pages: int
    total: int
    prev: str | None
    next: str | None


def _paging(path: str, page: int, total: int, params: dict[str, str]) -> Paging:
    last = max(1, -(-total // PAGE_SIZE))

    def href(n: int) -> str:
        return f"{path}?{urlencode({**params, 'page': n})}"

    return Paging(
        page,
        last,
        total,
        href(page - 1) if page > 1 else None,
        href(page + 1) if page < last else None,
    )


def _page(
    request: Request,
    session: SessionDep,
    template: str,
    title_key: str,
    *,
    section: str,
    title: str | None = None,
    script: str | None = None,
    page_data: dict[str, Any] | None = None,
    **context: Any,
) -> HTMLResponse:
    return pages.render(
        request,
        template,
        session,
        active="registry",
        title_key=title_key,
        title=title,
        script=script,
        page_data=page_data,
        section=section,
        **context,
    )


def _list_page(
    request: Request,
    session: SessionDep,
    service: IngestService,
    section: str,
    rows: list[Any],
    total: int,
    page: int,
    q: str,
    **context: Any,
) -> HTMLResponse:
    """People, cards or kiosks: a searched, paged table named after its section."""
    name = section.rsplit("/", 1)[-1]
    return _page(
        request,
        session,
        f"registry_{name}.html",
        name,
        section=section,
        sites=pages.site_names(service.registry, pages.page_lang(request)),
        rows=rows,
        paging=_paging(section, page, total, {"q": q}),
        q=q,
        **context,
    )


def _error_page(
    request: Request, session: SessionDep, exc: HTTPException | RegistryEditError, back: str
) -> HTMLResponse:
    if isinstance(exc, RegistryEditError):
        exc = _edit_error(exc)
    if exc.status_code == status.HTTP_404_NOT_FOUND:
        # Back to the section's list: not a link that repeats an id the user may not see.
        back = "/".join(back.split("/")[:3])
    return pages.render(
        request,
        "error.html",
        session,
        active="registry",
        title_key="not_done",
        status_code=exc.status_code,
        switch_to=back,
        message=exc.detail,
        back=back,
    )


@router.get("/registry", include_in_schema=False)
def registry_home() -> RedirectResponse:
    return RedirectResponse("/registry/people", status.HTTP_303_SEE_OTHER)


@router.get("/registry/people", response_class=HTMLResponse, include_in_schema=False)
def people_page(
    request: Request,
    session: SessionDep,
    scope: ScopeDep,
    service: Service,
    q: TextQ = "",
    page: PageQ = 1,
) -> HTMLResponse:
    result = rc.search_people(service.registry, scope.view, q, None, page, PAGE_SIZE)
    return _list_page(
        request,
        session,
        service,
        "/registry/people",
        [p for p in result.rows if isinstance(p, rc.PersonRow)],
        result.total,
        page,
        q,
        export_href=f"/api/v1/registry/people.csv?{urlencode({'q': q})}",
        edit_sites=sorted(scope.edit),
    )


@router.post("/registry/people", response_class=HTMLResponse, include_in_schema=False)
def people_add_form(
    request: Request,
    session: SessionDep,
    scope: ScopeDep,
    service: Service,
    display_name: Annotated[str, Form(max_length=200)],
    site_id: Annotated[str, Form(max_length=63)],
) -> Response:
    try:
        _require_edit(scope, site_id)
        person_id = rc.add_person(service.registry, display_name, site_id)
    except (HTTPException, RegistryEditError) as exc:
        return _error_page(request, session, exc, "/registry/people")
    return RedirectResponse(f"/registry/people/{person_id}", status.HTTP_303_SEE_OTHER)


@router.get("/registry/people/{person_id}", response_class=HTMLResponse, include_in_schema=False)
def person_page(
    request: Request, person_id: str, session: SessionDep, scope: ScopeDep, service: Service
) -> HTMLResponse:
    person = _visible_person(service, scope, person_id)
    reg = service.registry
    site = reg.site(person.site_id)
    tz = site.tz if site else None

    def when(us: int | None) -> str | None:
        return i18n.format_ts(us, tz) if us is not None else None

    history = [
        {
            "card_uid": a.card_uid,
            "valid_from": when(a.valid_from_us),
            "valid_to": when(a.valid_to_us),
        }
        for a in rc.person_history(reg, person.person_id)
    ]
    return _page(
        request,
        session,
        "registry_person.html",
        "people",
        section="/registry/people",
        title=person.display_name,
        person=person,
        cards=rc.person_cards(reg, person.person_id),
        history=history,
        editable=person.site_id in scope.edit,
    )


@router.post("/registry/people/{person_id}", response_class=HTMLResponse, include_in_schema=False)
def person_rename_form(
    request: Request,
    person_id: str,
    session: SessionDep,
    scope: ScopeDep,
    service: Service,
    display_name: Annotated[str, Form(max_length=200)],
) -> Response:
    back = f"/registry/people/{person_id}"
    try:
        person = _editable_person(service, scope, person_id)
        rc.update_person(service.registry, person.person_id, display_name, None)
    except (HTTPException, RegistryEditError) as exc:
        return _error_page(request, session, exc, back)
    return RedirectResponse(back, status.HTTP_303_SEE_OTHER)


@router.post(
    "/registry/people/{person_id}/cards", response_class=HTMLResponse, include_in_schema=False
)
def person_card_form(
    request: Request,
    person_id: str,
    session: SessionDep,
    scope: ScopeDep,
    service: Service,
    card: Annotated[str, Form(max_length=64)],
    order: Annotated[Literal["le", "be"], Form()] = "le",
) -> Response:
    back = f"/registry/people/{person_id}"
    try:
        uid = card_uid_from_text(card, order)
        _do_assign(service, scope, uid, person_id)
    except (HTTPException, RegistryEditError) as exc:
        return _error_page(request, session, exc, back)
    return RedirectResponse(back, status.HTTP_303_SEE_OTHER)


@router.post(
    "/registry/cards/{card_uid}/deactivate", response_class=HTMLResponse, include_in_schema=False
)
def card_deactivate_form(
    request: Request, card_uid: str, session: SessionDep, scope: ScopeDep, service: Service
) -> Response:
    card = _visible_card(service, scope, card_uid)
    back = f"/registry/people/{card.person_id}"
    try:
        _require_edit(scope, card.site_id)
    except HTTPException as exc:
        return _error_page(request, session, exc, back)
    rc.deactivate_card(service.registry, card.card_uid)
    return RedirectResponse(back, status.HTTP_303_SEE_OTHER)


@router.get("/registry/cards", response_class=HTMLResponse, include_in_schema=False)
def cards_page(
    request: Request,
    session: SessionDep,
    scope: ScopeDep,
    service: Service,
    q: TextQ = "",
    page: PageQ = 1,
) -> HTMLResponse:
    result = rc.search_cards(service.registry, scope.view, q, None, None, page, PAGE_SIZE)
    rows = [c for c in result.rows if isinstance(c, rc.CardRow)]
    return _list_page(request, session, service, "/registry/cards", rows, result.total, page, q)


@router.get("/registry/devices", response_class=HTMLResponse, include_in_schema=False)
def devices_page(
    request: Request,
    session: SessionDep,
    scope: ScopeDep,
    service: Service,
    q: TextQ = "",
    page: PageQ = 1,
) -> HTMLResponse:
    now = service.registry.clock()
    result = rc.search_devices(service.registry, scope.view, q, None, page, PAGE_SIZE, now)
    rows = [d for d in result.rows if isinstance(d, rc.DeviceRow)]
    return _list_page(request, session, service, "/registry/devices", rows, result.total, page, q)


ENROL_MESSAGES = ("enrol_on_until", "enrol_off", "already_assigned", "assign", "person_id")


@router.get(
    "/registry/devices/{device_id}/enrol", response_class=HTMLResponse, include_in_schema=False
)
def enrol_page(
    request: Request, device_id: str, session: SessionDep, scope: ScopeDep, service: Service
) -> HTMLResponse:
    device = _visible_device(service, scope, device_id)
    people = rc.search_people(
        service.registry, scope.view, "", device.site_id, 1, rc.MAX_PER_PAGE
    ).rows
    return _page(
        request,
        session,
        "registry_enrol.html",
        "enrol",
        section="/registry/devices",
        script="enrol.js",
        page_data={
            "device_id": device.device_id,
            "messages": pages.messages(pages.page_lang(request), ENROL_MESSAGES),
        },
        device=device,
        editable=device.site_id in scope.edit,
        people=[p for p in people if isinstance(p, rc.PersonRow)],
    )


@router.post(
    "/registry/devices/{device_id}/enrol", response_class=HTMLResponse, include_in_schema=False
)
def enrol_start_form(
    request: Request,
    device_id: str,
    session: SessionDep,
    scope: ScopeDep,
    service: Service,
    minutes: Annotated[int, Form(ge=1, le=120)] = 10,
) -> Response:
    back = f"/registry/devices/{device_id}/enrol"
    try:
        device = _editable_device(service, scope, device_id)
    except HTTPException as exc:
        return _error_page(request, session, exc, "/registry/devices")
    service.enrol.start(device.device_id, minutes, session.user.username)
    return RedirectResponse(back, status.HTTP_303_SEE_OTHER)


@router.post(
    "/registry/devices/{device_id}/enrol/stop", response_class=HTMLResponse, include_in_schema=False
)
def enrol_stop_form(
    request: Request, device_id: str, session: SessionDep, scope: ScopeDep, service: Service
) -> Response:
    try:
        device = _editable_device(service, scope, device_id)
    except HTTPException as exc:
        return _error_page(request, session, exc, "/registry/devices")
    service.enrol.stop(device.device_id)
    return RedirectResponse(f"/registry/devices/{device_id}/enrol", status.HTTP_303_SEE_OTHER)


@router.post(
    "/registry/enrol/{capture_id}/assign", response_class=HTMLResponse, include_in_schema=False
)
def capture_assign_form(
    request: Request,
    capture_id: CaptureId,
    session: SessionDep,
    scope: ScopeDep,
    service: Service,
    person_id: Annotated[str, Form(max_length=64)],
) -> Response:
    try:
        capture = _visible_capture(service, scope, capture_id)
        _do_assign(service, scope, capture.card_uid, person_id.strip())
    except HTTPException as exc:
        return _error_page(request, session, exc, "/registry/devices")
    return RedirectResponse(f"/registry/people/{person_id.strip()}", status.HTTP_303_SEE_OTHER)
