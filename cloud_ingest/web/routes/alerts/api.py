"""Alerts and visits as JSON, limited to the user's areas.

GET  /api/v1/alerts[?kind=&state=&site=]   alerts in the user's areas, newest activity first
GET  /api/v1/alerts/counts                 alerts not closed, per kind: for the overview to poll
GET  /api/v1/alerts/{id}                   one alert (404 outside the user's areas)
POST /api/v1/alerts/{id}/ack               open -> acknowledged (manager; CSRF)
POST /api/v1/alerts/{id}/close             -> closed, cleared_by=user (manager; CSRF)
POST /api/v1/alerts/ack                    {ids: [...]} (or form fields id): acknowledge all or none
GET  /api/v1/visits/due                    visit-due list with where/when last seen
POST /api/v1/visits                        record a visit {person_id, note} (viewer+; CSRF)

The POSTs also take the forms of the /alerts pages: a form gets a 303 back to the page, JSON
callers get JSON.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request, status
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, RedirectResponse, Response

from cloud_ingest import i18n
from cloud_ingest.alerts import wellbeing
from cloud_ingest.alerts.engine import AlertEngine
from cloud_ingest.alerts.models import DEVICE_KINDS, FRAUD_KINDS, Alert, Kind, State
from cloud_ingest.alerts.store import AlertStore
from cloud_ingest.console.roles import Action, User, can, view_areas
from cloud_ingest.console.visits_due import due_rows
from cloud_ingest.web.body import read_body
from cloud_ingest.web.deps import AlertStoreDep, EngineDep
from cloud_ingest.web.schemas.alerts import MAX_NOTE, parse_filters
from cloud_ingest.web.security import FORBIDDEN, NOT_FOUND, CurrentUser, csrf_protect, is_form

router = APIRouter(tags=["alerts"])


def _visible(store: AlertStore, user: User, alert_id: int) -> Alert:
    alert = store.get(alert_id)
    if alert is None or not can(user, Action.VIEW, alert.area_path):
        raise HTTPException(status.HTTP_404_NOT_FOUND, NOT_FOUND)
    return alert


def _back(data: dict[str, str], default: str) -> str:
    target = data.get("next", "")
    if target.startswith("/alerts") and not target.startswith("//") and "\n" not in target:
        return target
    return default


@router.get("/api/v1/alerts")
def list_alerts(
    user: CurrentUser,
    store: AlertStoreDep,
    engine: EngineDep,
    kind: str | None = None,
    state: str | None = None,
    site: str | None = None,
    limit: Annotated[int, Query(ge=1, le=2000)] = 500,
) -> JSONResponse:
    kinds, states = parse_filters(kind, state)
    found = store.find(view_areas(user), kinds=kinds, states=states, site_id=site, limit=limit)
    return JSONResponse(
        {"alerts": [a.as_json(engine.tz_of(a.site_id)) for a in found]},
        headers={"Cache-Control": "no-store"},
    )


@router.get("/api/v1/alerts/counts")
def alert_counts(user: CurrentUser, store: AlertStoreDep, engine: EngineDep) -> JSONResponse:
    """Alerts not closed in the user's areas: total, per kind and per group."""
    by_kind = store.counts(view_areas(user))
    groups = {
        "device": sum(n for k, n in by_kind.items() if Kind(k) in DEVICE_KINDS),
        "wellbeing": by_kind.get(Kind.VISIT_DUE.value, 0),
        "fraud": sum(n for k, n in by_kind.items() if Kind(k) in FRAUD_KINDS),
    }
    return JSONResponse(
        {
            "generated_at": engine.clock(),
            "generated_at_local": i18n.format_ts(engine.clock(), engine.default_tz, seconds=True),
            "open": sum(by_kind.values()),
            "by_kind": by_kind,
            "by_group": groups,
        },
        headers={"Cache-Control": "no-store"},
    )


@router.get("/api/v1/alerts/{alert_id:int}")
def get_alert(
    alert_id: int, user: CurrentUser, store: AlertStoreDep, engine: EngineDep
) -> dict[str, Any]:
    alert = _visible(store, user, alert_id)
    return alert.as_json(engine.tz_of(alert.site_id))


def _act(store: AlertStore, engine: AlertEngine, user: User, alert_id: int, close: bool) -> Alert:
    alert = _visible(store, user, alert_id)
    if not can(user, Action.ACK_ALERT, alert.area_path):
        raise HTTPException(status.HTTP_403_FORBIDDEN, FORBIDDEN)
    now = engine.clock()
    if close:
        store.close_alert(alert_id, user.username, now)
    else:
        store.acknowledge(alert_id, user.username, now)
    updated = store.get(alert_id)
    assert updated is not None
    return updated


async def _act_route(
    request: Request,
    alert_id: int,
    user: User,
    store: AlertStore,
    engine: AlertEngine,
    close: bool,
) -> Response:
    data = await read_body(request)
    alert = await run_in_threadpool(_act, store, engine, user, alert_id, close)
    if is_form(request):
        return RedirectResponse(_back(data, "/alerts"), status.HTTP_303_SEE_OTHER)
    return JSONResponse(alert.as_json(engine.tz_of(alert.site_id)))


@router.post("/api/v1/alerts/{alert_id:int}/ack", dependencies=[Depends(csrf_protect)])
async def ack_alert(
    request: Request, alert_id: int, user: CurrentUser, store: AlertStoreDep, engine: EngineDep
) -> Response:
    """Acknowledge: someone is on it. It still clears by itself, or is closed by a manager."""
    return await _act_route(request, alert_id, user, store, engine, close=False)


@router.post("/api/v1/alerts/{alert_id:int}/close", dependencies=[Depends(csrf_protect)])
async def close_alert(
    request: Request, alert_id: int, user: CurrentUser, store: AlertStoreDep, engine: EngineDep
) -> Response:
    return await _act_route(request, alert_id, user, store, engine, close=True)


MAX_BULK = 500


async def _read_ids(request: Request) -> tuple[list[int], str]:
    """The alert ids of a bulk action: repeated `id` fields of a form, or JSON `{"ids": [...]}`;
    and the form's `next`."""
    if is_form(request):
        form = await request.form()
        raw: list[Any] = [v for v in form.getlist("id") if isinstance(v, str)]
        nxt = form.get("next")
        target = nxt if isinstance(nxt, str) else ""
    else:
        try:
            data = await request.json()
        except ValueError:
            raise HTTPException(status.HTTP_400_BAD_REQUEST, "JSON object expected") from None
        raw = data.get("ids") if isinstance(data, dict) else None  # type: ignore[assignment]
        if not isinstance(raw, list):
            raise HTTPException(status.HTTP_400_BAD_REQUEST, '{"ids": [alert ids]} expected')
        target = ""
    try:
        ids = sorted({int(v) for v in raw})
    except (TypeError, ValueError):
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "alert ids are whole numbers") from None
    if not 0 < len(ids) <= MAX_BULK:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, f"1 to {MAX_BULK} alert ids")
    return ids, target


def _ack_all(store: AlertStore, engine: AlertEngine, user: User, ids: list[int]) -> list[Alert]:
    """All or nothing: every alert must be one the user may acknowledge, else none is."""
    alerts = [_visible(store, user, i) for i in ids]
    if not all(can(user, Action.ACK_ALERT, a.area_path) for a in alerts):
        raise HTTPException(status.HTTP_403_FORBIDDEN, FORBIDDEN)
    now = engine.clock()
    for a in alerts:
        if a.state is State.OPEN:
            store.acknowledge(a.id, user.username, now)
    return [updated for i in ids if (updated := store.get(i)) is not None]


@router.post("/api/v1/alerts/ack", dependencies=[Depends(csrf_protect)])
async def ack_alerts(
    request: Request, user: CurrentUser, store: AlertStoreDep, engine: EngineDep
) -> Response:
    """Acknowledge several alerts at once (the ticked rows of /alerts)."""
    ids, target = await _read_ids(request)
    done = await run_in_threadpool(_ack_all, store, engine, user, ids)
    if is_form(request):
        return RedirectResponse(_back({"next": target}, "/alerts"), status.HTTP_303_SEE_OTHER)
    return JSONResponse({"alerts": [a.as_json(engine.tz_of(a.site_id)) for a in done]})


@router.get("/api/v1/visits/due")
def visits_due(user: CurrentUser, store: AlertStoreDep, engine: EngineDep) -> JSONResponse:
    return JSONResponse(
        {"due": due_rows(store, engine.registry, user, engine.clock())},
        headers={"Cache-Control": "no-store"},
    )


def _record_visit(
    store: AlertStore, engine: AlertEngine, user: User, person_id: str, note: str
) -> dict[str, Any]:
    flagged = {p for p, _, _ in store.flags()}
    site = wellbeing.home_sites(engine.registry, [person_id]).get(person_id)
    area = engine.area_of(site)
    # A person outside the user's areas answers exactly like one that does not exist.
    if person_id not in flagged or site is None or not can(user, Action.VIEW, area):
        raise HTTPException(status.HTTP_404_NOT_FOUND, NOT_FOUND)
    if not can(user, Action.RECORD_VISIT, area):
        raise HTTPException(status.HTTP_403_FORBIDDEN, FORBIDDEN)
    open_alert = store.find(
        [area], kinds=[Kind.VISIT_DUE], states=[State.OPEN, State.ACKNOWLEDGED], limit=2000
    )
    alert_id = next((a.id for a in open_alert if a.subject == person_id), None)
    now = engine.clock()
    visit_id = store.record_visit(person_id, area, now, user.username, note, alert_id)
    return {"visit_id": visit_id, "person_id": person_id, "closed_alert_id": alert_id}


@router.post("/api/v1/visits", dependencies=[Depends(csrf_protect)])
async def record_visit(
    request: Request, user: CurrentUser, store: AlertStoreDep, engine: EngineDep
) -> Response:
    """A watcher's or manager's visit (探访): kept for the monthly figures; closes visit-due."""
    data = await read_body(request)
    person_id = data.get("person_id", "").strip()
    note = data.get("note", "").strip()
    if not person_id:
        raise HTTPException(422, "缺少 person_id missing")
    if len(note) > MAX_NOTE:
        raise HTTPException(
            422,
            f"备注过长 note longer than {MAX_NOTE} characters",
        )
    body = await run_in_threadpool(_record_visit, store, engine, user, person_id, note)
    if is_form(request):
        return RedirectResponse(_back(data, "/alerts/visits"), status.HTTP_303_SEE_OTHER)
    return JSONResponse(body, status.HTTP_201_CREATED)
