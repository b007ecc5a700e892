"""The registry's pages and forms (/registry/...): people, cards, kiosks, enrol mode.

The same access rules as the JSON API (`cloud_ingest.web.visibility`); a refused form answers
an error page that leads back, never to an id the user may not see.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, HTTPException, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from cloud_ingest import i18n
from cloud_ingest.alerts.wellbeing import FLAG_NAMES
from cloud_ingest.console.care import person_care
from cloud_ingest.console.enrolment import card_uid_from_text
from cloud_ingest.errors import RegistryEditError
from cloud_ingest.registry import queries as rc
from cloud_ingest.service import ConsoleService
from cloud_ingest.web import render
from cloud_ingest.web import visibility as vis
from cloud_ingest.web.audit_trail import note
from cloud_ingest.web.deps import PageDep, ScopeDep, ServiceDep, site_people
from cloud_ingest.web.render import PageContext
from cloud_ingest.web.schemas.errors import ERRORS
from cloud_ingest.web.schemas.registry import PAGE_SIZE, CaptureId, PageQ, TextQ
from cloud_ingest.web.security import csrf_protect

router = APIRouter(tags=["registry"], dependencies=[Depends(csrf_protect)], responses=ERRORS)

ENROL_MESSAGES = (
    "enrol_on_until", "enrol_off", "already_assigned", "assign", "person_id", "pick_person",
    "no_match", "card_held_by", "transfer_card", "enrolled_to", "has_card", "enrol_failed",
)  # fmt: skip


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
    ctx: PageContext,
    template: str,
    title_key: str,
    *,
    section: str,
    title: str | None = None,
    script: str | None = None,
    page_data: dict[str, Any] | None = None,
    **context: Any,
) -> HTMLResponse:
    return ctx.render(
        template,
        active="registry",
        title_key=title_key,
        title=title,
        script=script,
        page_data=page_data,
        section=section,
        **context,
    )


def _list_page(
    ctx: PageContext,
    service: ConsoleService,
    section: str,
    rows: list[Any],
    total: int,
    page: int,
    q: str,
    **context: Any,
) -> HTMLResponse:
    """People, cards or kiosks: a searched, paged table named after its section."""
    note(ctx.request, results=total, text=bool(q))  # the audit row: the count, not the text
    name = section.rsplit("/", 1)[-1]
    return _page(
        ctx,
        f"registry_{name}.html",
        name,
        section=section,
        sites=render.site_names(service.registry, ctx.lang),
        rows=rows,
        paging=_paging(section, page, total, {"q": q}),
        q=q,
        **context,
    )


def _site_name(service: ConsoleService, site_id: str, lang: str) -> str:
    """A heading's site: its name in the page's language, the id when the registry lost it."""
    site = service.registry.site(site_id)
    return render.local_name(site.name_zh, site.name_en, lang) if site else site_id


def _error_page(
    ctx: PageContext, exc: HTTPException | RegistryEditError, back: str
) -> HTMLResponse:
    if isinstance(exc, RegistryEditError):
        exc = vis.edit_error(exc)
    if exc.status_code == status.HTTP_404_NOT_FOUND:
        # Back to the section's list: not a link that repeats an id the user may not see.
        back = "/".join(back.split("/")[:3])
    return ctx.not_done(exc.detail, exc.status_code, active="registry", back=back)


@router.get("/registry", include_in_schema=False)
def registry_home() -> RedirectResponse:
    return RedirectResponse("/registry/people", status.HTTP_303_SEE_OTHER)


@router.get("/registry/people", response_class=HTMLResponse, include_in_schema=False)
def people_page(
    ctx: PageDep, scope: ScopeDep, service: ServiceDep, q: TextQ = "", page: PageQ = 1
) -> HTMLResponse:
    result = rc.search_people(service.registry, scope.view, q, None, page, PAGE_SIZE)
    return _list_page(
        ctx,
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
    ctx: PageDep,
    scope: ScopeDep,
    service: ServiceDep,
    display_name: Annotated[str, Form(max_length=200)],
    site_id: Annotated[str, Form(max_length=63)],
) -> Response:
    try:
        vis.require_edit(scope, site_id)
        person_id = rc.add_person(service.registry, display_name, site_id)
    except (HTTPException, RegistryEditError) as exc:
        return _error_page(ctx, exc, "/registry/people")
    note(ctx.request, object=person_id, site=site_id)
    return RedirectResponse(f"/registry/people/{person_id}", status.HTTP_303_SEE_OTHER)


@router.get("/registry/people/{person_id}", response_class=HTMLResponse, include_in_schema=False)
def person_page(person_id: str, ctx: PageDep, scope: ScopeDep, service: ServiceDep) -> HTMLResponse:
    person = vis.visible_person(service, scope, person_id)
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
    care = person_care(service.alerts, ctx.session.user, person.person_id, person.site_id)
    flags = [
        {
            "flag": f.flag,
            "name": render.pick(FLAG_NAMES.get(f.flag, (f.flag, f.flag)), ctx.lang),
            "since": when(f.flagged_at),
        }
        for f in care.flags
    ]
    return _page(
        ctx,
        "registry_person.html",
        "people",
        section="/registry/people",
        title=person.display_name,
        site_name=_site_name(service, person.site_id, ctx.lang),
        person=person,
        cards=rc.person_cards(reg, person.person_id),
        history=history,
        editable=person.site_id in scope.edit,
        care=care,
        flags=flags,
    )


@router.post("/registry/people/{person_id}", response_class=HTMLResponse, include_in_schema=False)
def person_rename_form(
    person_id: str,
    ctx: PageDep,
    scope: ScopeDep,
    service: ServiceDep,
    display_name: Annotated[str, Form(max_length=200)],
) -> Response:
    back = f"/registry/people/{person_id}"
    try:
        person = vis.editable_person(service, scope, person_id)
        rc.update_person(service.registry, person.person_id, display_name, None)
    except (HTTPException, RegistryEditError) as exc:
        return _error_page(ctx, exc, back)
    return RedirectResponse(back, status.HTTP_303_SEE_OTHER)


@router.post(
    "/registry/people/{person_id}/cards", response_class=HTMLResponse, include_in_schema=False
)
def person_card_form(
    person_id: str,
    ctx: PageDep,
    scope: ScopeDep,
    service: ServiceDep,
    card: Annotated[str, Form(max_length=64)],
    order: Annotated[Literal["le", "be"], Form()] = "le",
    move: Annotated[bool, Form()] = False,
) -> Response:
    back = f"/registry/people/{person_id}"
    try:
        uid = card_uid_from_text(card, order)
        person = vis.editable_person(service, scope, person_id)
        held = rc.get_card(service.registry, scope.view, uid)
        if held and held.active and held.person_id != person.person_id and not move:
            # Someone the user can see holds it: ask before moving it (the form again, with move).
            holder = rc.get_person(service.registry, scope.view, held.person_id)
            return _page(
                ctx,
                "registry_move.html",
                "assign_card",
                section="/registry/people",
                person=person,
                card=uid,
                holder=holder,
            )
        _, previous = vis.assign_card(service, scope, uid, person_id)
    except (HTTPException, RegistryEditError) as exc:
        return _error_page(ctx, exc, back)
    note(ctx.request, card=uid, person=person_id, moved_from=previous)  # the audit row's detail
    return RedirectResponse(back, status.HTTP_303_SEE_OTHER)


@router.post(
    "/registry/cards/{card_uid}/deactivate", response_class=HTMLResponse, include_in_schema=False
)
def card_deactivate_form(
    card_uid: str, ctx: PageDep, scope: ScopeDep, service: ServiceDep
) -> Response:
    card = vis.visible_card(service, scope, card_uid)
    back = f"/registry/people/{card.person_id}"
    try:
        vis.require_edit(scope, card.site_id)
    except HTTPException as exc:
        return _error_page(ctx, exc, back)
    rc.deactivate_card(service.registry, card.card_uid)
    note(ctx.request, person=card.person_id)  # the card is the row's object
    return RedirectResponse(back, status.HTTP_303_SEE_OTHER)


@router.get("/registry/cards", response_class=HTMLResponse, include_in_schema=False)
def cards_page(
    ctx: PageDep, scope: ScopeDep, service: ServiceDep, q: TextQ = "", page: PageQ = 1
) -> HTMLResponse:
    result = rc.search_cards(service.registry, scope.view, q, None, None, page, PAGE_SIZE)
    rows = [c for c in result.rows if isinstance(c, rc.CardRow)]
    return _list_page(ctx, service, "/registry/cards", rows, result.total, page, q)


@router.get("/registry/devices", response_class=HTMLResponse, include_in_schema=False)
def devices_page(
    ctx: PageDep, scope: ScopeDep, service: ServiceDep, q: TextQ = "", page: PageQ = 1
) -> HTMLResponse:
    now = service.registry.clock()
    result = rc.search_devices(service.registry, scope.view, q, None, page, PAGE_SIZE, now)
    rows = [d for d in result.rows if isinstance(d, rc.DeviceRow)]
    return _list_page(ctx, service, "/registry/devices", rows, result.total, page, q)


@router.get(
    "/registry/devices/{device_id}/enrol", response_class=HTMLResponse, include_in_schema=False
)
def enrol_page(device_id: str, ctx: PageDep, scope: ScopeDep, service: ServiceDep) -> HTMLResponse:
    device = vis.visible_device(service, scope, device_id)
    return _page(
        ctx,
        "registry_enrol.html",
        "enrol",
        section="/registry/devices",
        script="enrol.js",
        page_data={
            "device_id": device.device_id,
            "messages": render.messages(ctx.lang, ENROL_MESSAGES),
            # The picker searches these in the page: name, pinyin initials or id.
            "people": site_people(service, scope, device.site_id),
        },
        device=device,
        site_name=_site_name(service, device.site_id, ctx.lang),
        editable=device.site_id in scope.edit,
    )


@router.post(
    "/registry/devices/{device_id}/enrol", response_class=HTMLResponse, include_in_schema=False
)
def enrol_start_form(
    device_id: str,
    ctx: PageDep,
    scope: ScopeDep,
    service: ServiceDep,
    minutes: Annotated[int, Form(ge=1, le=120)] = 10,
) -> Response:
    back = f"/registry/devices/{device_id}/enrol"
    try:
        device = vis.editable_device(service, scope, device_id)
    except HTTPException as exc:
        return _error_page(ctx, exc, "/registry/devices")
    service.enrol.start(device.device_id, minutes, ctx.session.user.username)
    return RedirectResponse(back, status.HTTP_303_SEE_OTHER)


@router.post(
    "/registry/devices/{device_id}/enrol/stop", response_class=HTMLResponse, include_in_schema=False
)
def enrol_stop_form(device_id: str, ctx: PageDep, scope: ScopeDep, service: ServiceDep) -> Response:
    try:
        device = vis.editable_device(service, scope, device_id)
    except HTTPException as exc:
        return _error_page(ctx, exc, "/registry/devices")
    service.enrol.stop(device.device_id)
    return RedirectResponse(f"/registry/devices/{device_id}/enrol", status.HTTP_303_SEE_OTHER)


@router.post(
    "/registry/enrol/{capture_id}/assign", response_class=HTMLResponse, include_in_schema=False
)
def capture_assign_form(
    capture_id: CaptureId,
    ctx: PageDep,
    scope: ScopeDep,
    service: ServiceDep,
    person_id: Annotated[str, Form(max_length=64)],
) -> Response:
    try:
        capture = vis.visible_capture(service, scope, capture_id)
        _, previous = vis.assign_card(service, scope, capture.card_uid, person_id.strip())
    except HTTPException as exc:
        return _error_page(ctx, exc, "/registry/devices")
    note(ctx.request, card=capture.card_uid, person=person_id.strip(), moved_from=previous)
    return RedirectResponse(f"/registry/people/{person_id.strip()}", status.HTTP_303_SEE_OTHER)
