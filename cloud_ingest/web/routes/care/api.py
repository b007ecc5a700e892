"""Care flags, contacts and closures as JSON (forms get a 303 back to their page).

POST /api/v1/people/{person_id}/flags      {flag, active: 1|0}: set or clear (manager; CSRF)
POST /api/v1/people/{person_id}/contact    {phone, address}: both empty deletes (manager; CSRF)
GET  /api/v1/closures                      closures inside or above the user's areas
POST /api/v1/closures                      {area, start_day, end_day?, reason} (manager; CSRF)
POST /api/v1/closures/{closure_id}/delete  (manager of its area; CSRF)
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Request, status
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, RedirectResponse, Response

from cloud_ingest.alerts.closures import Closure, Closures, parse_day
from cloud_ingest.console import care
from cloud_ingest.console.roles import Action, can
from cloud_ingest.errors import AlertError, AreaError, RegistryEditError
from cloud_ingest.registry import areas
from cloud_ingest.registry.contacts import set_contact
from cloud_ingest.service import ConsoleService
from cloud_ingest.web import visibility as vis
from cloud_ingest.web.audit_trail import note
from cloud_ingest.web.body import read_body
from cloud_ingest.web.deps import PageDep, ScopeDep, ServiceDep
from cloud_ingest.web.render import PageContext
from cloud_ingest.web.security import FORBIDDEN, CurrentUser, csrf_protect, is_form

router = APIRouter(tags=["care"])
CLOSURES_PAGE = "/alerts/closures"


def _done(request: Request, back: str, body: dict[str, Any], code: int = 200) -> Response:
    if is_form(request):
        return RedirectResponse(back, status.HTTP_303_SEE_OTHER)
    return JSONResponse(body, code)


def _refused(request: Request, ctx: PageContext, exc: Exception, back: str) -> Response:
    """A refused edit: a form gets the error page leading back (what was typed is kept in the
    page's history), JSON callers a 400."""
    if not is_form(request):
        raise HTTPException(status.HTTP_400_BAD_REQUEST, str(exc))
    active = "registry" if back.startswith("/registry") else "alerts"
    return ctx.not_done(str(exc), status.HTTP_400_BAD_REQUEST, active=active, back=back)


def _manageable(service: ConsoleService, scope: vis.Scope, person_id: str) -> str:
    """The person's area, if the user may change their care (404 unseen, 403 not a manager)."""
    person = vis.visible_person(service, scope, person_id)
    area = service.alerts.area_of(person.site_id)
    if not can(scope.user, Action.MANAGE_CARE, area):
        raise HTTPException(status.HTTP_403_FORBIDDEN, FORBIDDEN)
    return area


@router.post("/api/v1/people/{person_id}/flags", dependencies=[Depends(csrf_protect)])
async def set_flag(
    person_id: str, request: Request, ctx: PageDep, scope: ScopeDep, service: ServiceDep
) -> Response:
    """独居 / 困境儿童: set (flagged now: the full grace before a visit is due) or clear."""
    data = await read_body(request)
    flag, active = data.get("flag", "").strip(), data.get("active", "1").strip()
    if active not in ("0", "1"):
        raise HTTPException(422, "active must be 1 or 0")
    _manageable(service, scope, person_id)
    back = f"/registry/people/{person_id}"
    try:
        changed = await run_in_threadpool(
            care.set_flag, service.alerts, person_id, flag, active == "1"
        )
    except AlertError as exc:
        return _refused(request, ctx, exc, back)
    note(request, flag=flag, active=active)
    return _done(request, back, {"person_id": person_id, "flag": flag, "changed": changed})


@router.post("/api/v1/people/{person_id}/contact", dependencies=[Depends(csrf_protect)])
async def set_person_contact(
    person_id: str, request: Request, ctx: PageDep, scope: ScopeDep, service: ServiceDep
) -> Response:
    """Phone and address for the watcher's visit; both empty deletes them."""
    data = await read_body(request)
    _manageable(service, scope, person_id)
    try:
        contact = await run_in_threadpool(
            set_contact, service.registry, person_id, data.get("phone", ""),
            data.get("address", ""), scope.user.username, service.alerts.clock(),
        )  # fmt: skip
    except RegistryEditError as exc:
        return _refused(request, ctx, exc, f"/registry/people/{person_id}")
    note(request, contact="set" if contact else "deleted")
    body = {"person_id": person_id, "phone": contact.phone if contact else "",
            "address": contact.address if contact else ""}  # fmt: skip
    return _done(request, f"/registry/people/{person_id}", body)


def closure_json(c: Closure) -> dict[str, Any]:
    return {
        "id": c.id,
        "area_path": c.area_path,
        "start_day": c.start_day.isoformat(),
        "end_day": c.end_day.isoformat() if c.end_day else None,
        "reason": c.reason,
        "created_by": c.created_by,
    }


@router.get("/api/v1/closures")
def list_closures(user: CurrentUser, service: ServiceDep) -> JSONResponse:
    found = care.visible_closures(service.alerts, user)
    return JSONResponse(
        {"closures": [{**closure_json(c), "can_delete": mine} for c, mine in found]},
        headers={"Cache-Control": "no-store"},
    )


@router.post("/api/v1/closures", dependencies=[Depends(csrf_protect)])
async def add_closure(
    request: Request, ctx: PageDep, user: CurrentUser, service: ServiceDep
) -> Response:
    """闭院 A closure of an area (every site beneath it), local days, both ends included."""
    data = await read_body(request)
    try:
        area = areas.parse_path(data.get("area", ""))
        start = parse_day(data.get("start_day", ""), "开始 start")
        end_text = data.get("end_day", "").strip()
        end = parse_day(end_text, "结束 end") if end_text else None
    except (AreaError, AlertError) as exc:
        return _refused(request, ctx, exc, CLOSURES_PAGE)
    note(request, area=area)
    if not can(user, Action.MANAGE_CARE, area):
        raise HTTPException(status.HTTP_403_FORBIDDEN, FORBIDDEN)
    engine = service.alerts
    try:
        made = Closures(engine.store).add(
            area, start, end, data.get("reason", ""), user.username, engine.clock()
        )
    except AlertError as exc:
        return _refused(request, ctx, exc, CLOSURES_PAGE)
    note(request, object=f"closure:{made.id}")
    await run_in_threadpool(engine.evaluate_wellbeing, engine.clock())  # the count drops now
    return _done(request, CLOSURES_PAGE, closure_json(made), status.HTTP_201_CREATED)


@router.post("/api/v1/closures/{closure_id}/delete", dependencies=[Depends(csrf_protect)])
async def delete_closure(
    closure_id: int, request: Request, user: CurrentUser, service: ServiceDep
) -> Response:
    engine = service.alerts
    closures = Closures(engine.store)
    found = closures.get(closure_id)
    if found is None or not can(user, Action.VIEW, found.area_path):
        raise vis.not_found()
    if not can(user, Action.MANAGE_CARE, found.area_path):
        raise HTTPException(status.HTTP_403_FORBIDDEN, FORBIDDEN)
    note(request, area=found.area_path)
    closures.delete(closure_id)
    await run_in_threadpool(engine.evaluate_wellbeing, engine.clock())
    return _done(request, CLOSURES_PAGE, {"deleted": closure_id})
