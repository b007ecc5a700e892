"""Alerts and visits: JSON API and the /alerts pages, limited to the user's areas.

Mount with ``app.include_router(alerts.router)`` on an app that has `configure_auth` and a
service (``app.state.service.alerts`` is the AlertEngine).

GET  /api/v1/alerts[?kind=&state=&site=]   alerts in the user's areas, newest activity first
GET  /api/v1/alerts/counts                 alerts not closed, per kind: for the overview to poll
GET  /api/v1/alerts/{id}                   one alert (404 outside the user's areas)
POST /api/v1/alerts/{id}/ack               open -> acknowledged (manager; CSRF)
POST /api/v1/alerts/{id}/close             -> closed, cleared_by=user (manager; CSRF)
GET  /api/v1/visits/due                    visit-due list with where/when last seen
POST /api/v1/visits                        record a visit {person_id, note} (viewer+; CSRF)
GET  /alerts, /alerts/visits               the pages (zh-CN first, English beside)

Forms posted from the pages get a 303 back to the page; JSON callers get JSON.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request, status
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from cloud_ingest import i18n
from cloud_ingest.alerts import wellbeing
from cloud_ingest.alerts.engine import AlertEngine
from cloud_ingest.alerts.store import (
    DEVICE_KINDS,
    FRAUD_KINDS,
    KIND_NAMES,
    Alert,
    AlertStore,
    Kind,
    State,
    connect,
)
from cloud_ingest.console.accounts import Action, User, can
from cloud_ingest.web import pages
from cloud_ingest.web.security import (
    FORBIDDEN,
    NOT_FOUND,
    CurrentUser,
    SessionDep,
    csrf_protect,
)

router = APIRouter(tags=["alerts"])

MAX_NOTE = 1000
STATE_BADGES = {State.OPEN: "bad", State.ACKNOWLEDGED: "warn", State.CLOSED: "ok"}


def get_engine(request: Request) -> AlertEngine:
    engine: AlertEngine = request.app.state.service.alerts
    return engine


EngineDep = Annotated[AlertEngine, Depends(get_engine)]


def get_alert_store(engine: EngineDep) -> Iterator[AlertStore]:
    """One connection per request; the engine's own is for the ingest and evaluator threads."""
    store = AlertStore(connect(engine.db_path))
    try:
        yield store
    finally:
        store.close()


StoreDep = Annotated[AlertStore, Depends(get_alert_store)]


def view_areas(user: User) -> list[str]:
    """Every area the user may view (any grant allows viewing)."""
    return [g.area for g in user.grants] if not user.disabled else []


def _visible(store: AlertStore, user: User, alert_id: int) -> Alert:
    alert = store.get(alert_id)
    if alert is None or not can(user, Action.VIEW, alert.area_path):
        raise HTTPException(status.HTTP_404_NOT_FOUND, NOT_FOUND)
    return alert


def _parse_filters(kind: str | None, state: str | None) -> tuple[list[Kind], list[State]]:
    try:
        kinds = [Kind(kind)] if kind else []
        states = [State(state)] if state else []
    except ValueError:
        raise HTTPException(
            422,
            f"未知筛选 unknown filter: kind is one of {[k.value for k in Kind]}, "
            f"state one of {[s.value for s in State]}",
        ) from None
    return kinds, states


def _is_form(request: Request) -> bool:
    ctype = request.headers.get("content-type", "")
    return ctype.startswith(("application/x-www-form-urlencoded", "multipart/form-data"))


async def _read_body(request: Request) -> dict[str, str]:
    if _is_form(request):
        form = await request.form()
        return {k: v for k, v in form.items() if isinstance(v, str)}
    if not await request.body():
        return {}
    try:
        data = await request.json()
    except ValueError:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "JSON object expected") from None
    if not isinstance(data, dict):
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "JSON object expected")
    return {k: v for k, v in data.items() if isinstance(v, str)}


def _back(request: Request, data: dict[str, str], default: str) -> str:
    target = data.get("next", "")
    if target.startswith("/alerts") and not target.startswith("//") and "\n" not in target:
        return target
    return default


# --- JSON ---------------------------------------------------------------------------------


@router.get("/api/v1/alerts")
def list_alerts(
    user: CurrentUser,
    store: StoreDep,
    kind: str | None = None,
    state: str | None = None,
    site: str | None = None,
    limit: Annotated[int, Query(ge=1, le=2000)] = 500,
) -> JSONResponse:
    kinds, states = _parse_filters(kind, state)
    found = store.find(view_areas(user), kinds=kinds, states=states, site_id=site, limit=limit)
    return JSONResponse(
        {"alerts": [a.as_json() for a in found]}, headers={"Cache-Control": "no-store"}
    )


@router.get("/api/v1/alerts/counts")
def alert_counts(user: CurrentUser, store: StoreDep, engine: EngineDep) -> JSONResponse:
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
            "open": sum(by_kind.values()),
            "by_kind": by_kind,
            "by_group": groups,
        },
        headers={"Cache-Control": "no-store"},
    )


@router.get("/api/v1/alerts/{alert_id:int}")
def get_alert(alert_id: int, user: CurrentUser, store: StoreDep) -> dict[str, Any]:
    return _visible(store, user, alert_id).as_json()


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
    data = await _read_body(request)
    alert = await run_in_threadpool(_act, store, engine, user, alert_id, close)
    if _is_form(request):
        return RedirectResponse(_back(request, data, "/alerts"), status.HTTP_303_SEE_OTHER)
    return JSONResponse(alert.as_json())


@router.post("/api/v1/alerts/{alert_id:int}/ack", dependencies=[Depends(csrf_protect)])
async def ack_alert(
    request: Request, alert_id: int, user: CurrentUser, store: StoreDep, engine: EngineDep
) -> Response:
    """Acknowledge: someone is on it. It still clears by itself, or is closed by a manager."""
    return await _act_route(request, alert_id, user, store, engine, close=False)


@router.post("/api/v1/alerts/{alert_id:int}/close", dependencies=[Depends(csrf_protect)])
async def close_alert(
    request: Request, alert_id: int, user: CurrentUser, store: StoreDep, engine: EngineDep
) -> Response:
    return await _act_route(request, alert_id, user, store, engine, close=True)


def _due_rows(store: AlertStore, engine: AlertEngine, user: User) -> list[dict[str, Any]]:
    open_due = store.find(
        view_areas(user), kinds=[Kind.VISIT_DUE], states=[State.OPEN, State.ACKNOWLEDGED]
    )
    people = [a.subject for a in open_due]
    seen = store.last_seen(people)
    flags: dict[str, list[str]] = {}
    for person, flag, _ in store.flags():
        flags.setdefault(person, []).append(flag)
    tz = {s.site_id: s.tz for s in engine.registry.sites()}
    open_due.sort(key=lambda a: seen[a.subject].ts_us if a.subject in seen else 0)
    rows = []  # longest unseen first
    for a in open_due:
        last = seen.get(a.subject)
        rows.append(
            {
                "alert_id": a.id,
                "person_id": a.subject,
                "site_id": a.site_id,
                "area_path": a.area_path,
                "flags": flags.get(a.subject, []),
                "due_since": a.opened_at,
                "last_seen_at": last.ts_us if last else None,
                "last_seen_local": i18n.format_ts(last.ts_us, tz.get(last.site_id))
                if last
                else None,
                "last_seen_site": last.site_id if last else None,
                "last_seen_device": last.device_id if last else None,
                "last_seen_kind": last.kind if last else None,
                "detail": f"{a.detail_zh} {a.detail_en}",
                "detail_zh": a.detail_zh,
                "detail_en": a.detail_en,
                "can_record": can(user, Action.RECORD_VISIT, a.area_path),
            }
        )
    return rows


@router.get("/api/v1/visits/due")
def visits_due(user: CurrentUser, store: StoreDep, engine: EngineDep) -> JSONResponse:
    return JSONResponse(
        {"due": _due_rows(store, engine, user)}, headers={"Cache-Control": "no-store"}
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
    request: Request, user: CurrentUser, store: StoreDep, engine: EngineDep
) -> Response:
    """A watcher's or manager's visit (探访): kept for the monthly figures; closes visit-due."""
    data = await _read_body(request)
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
    if _is_form(request):
        return RedirectResponse(_back(request, data, "/alerts/visits"), status.HTTP_303_SEE_OTHER)
    return JSONResponse(body, status.HTTP_201_CREATED)


# --- pages --------------------------------------------------------------------------------


def _when(ts: int | None, tz: str | None) -> str:
    return i18n.format_ts(ts, tz) if ts else "—"


def _shown_filter(user: User, engine: AlertEngine, site: str | None) -> set[str]:
    """The site filter as asked, kept in the form only if the user may see that site."""
    return {site} if site and can(user, Action.VIEW, engine.area_of(site)) else set()


def _counts_by_kind(store: AlertStore, user: User) -> dict[str, int]:
    return store.counts(view_areas(user))


@router.get("/alerts", response_class=HTMLResponse)
def alerts_page(
    request: Request,
    session: SessionDep,
    store: StoreDep,
    engine: EngineDep,
    kind: str | None = None,
    state: str | None = None,
    site: str | None = None,
) -> HTMLResponse:
    """告警 Alerts: filters, and acknowledge/close for managers."""
    user = session.user
    lang = pages.page_lang(request)
    kinds, states = _parse_filters(kind, state)
    if not states and state is None:
        states = [State.OPEN, State.ACKNOWLEDGED]  # closed ones only when asked for
    found = store.find(view_areas(user), kinds=kinds, states=states, site_id=site or None)
    tz = {s.site_id: s.tz for s in engine.registry.sites()}
    names = pages.site_names(engine.registry, lang)
    rows = [
        {
            "id": a.id,
            "kind": a.kind.value,
            "subject": a.subject,
            "state": a.state.value,
            "kind_name": pages.pick(KIND_NAMES[a.kind], lang),
            "site": names.get(a.site_id or "", a.site_id),
            "detail": a.detail_en if lang == i18n.EN else a.detail_zh,
            "opened": _when(a.opened_at, tz.get(a.site_id or "")),
            "latest": _when(a.last_seen_at, tz.get(a.site_id or "")),
            "count": a.count,
            "state_name": i18n.t(f"alert_state_{a.state.value}", lang),
            "badge": STATE_BADGES[a.state],
            "can_act": a.state is not State.CLOSED and can(user, Action.ACK_ALERT, a.area_path),
        }
        for a in found
    ]
    return pages.render(
        request,
        "alerts.html",
        session,
        active="alerts",
        title_key="nav_alerts",
        page_data={"alert_counts": _counts_by_kind(store, user), "reload_on_alerts": True},
        rows=rows,
        kinds=[(k.value, pages.pick(KIND_NAMES[k], lang)) for k in Kind],
        states=[(s.value, i18n.t(f"alert_state_{s.value}", lang)) for s in State],
        sites=sorted({a.site_id for a in found if a.site_id} | _shown_filter(user, engine, site)),
        kind=kind,
        state=state,
        site=site,
        here="/alerts" + (f"?{request.url.query}" if request.url.query else ""),
    )


@router.get("/alerts/visits", response_class=HTMLResponse)
def visits_page(
    request: Request, session: SessionDep, store: StoreDep, engine: EngineDep
) -> HTMLResponse:
    """需探访 Visits due, longest unseen first, each with a 'record visit' form."""
    lang = pages.page_lang(request)
    due = _due_rows(store, engine, session.user)
    people = engine.registry.people_homes([r["person_id"] for r in due])
    sites = pages.site_names(engine.registry, lang)
    for r in due:
        r["name"] = people.get(r["person_id"], ("", ""))[0]
        r["site_name"] = sites.get(r["site_id"] or "", r["site_id"])
        r["last_seen_site_name"] = sites.get(r["last_seen_site"] or "", r["last_seen_site"])
        r["flags"] = "、".join(
            pages.pick(wellbeing.FLAG_NAMES.get(f, (f, f)), lang) for f in r["flags"]
        )
        r["detail"] = r["detail_en"] if lang == i18n.EN else r["detail_zh"]
    return pages.render(
        request,
        "visits.html",
        session,
        active="alerts",
        title_key="visits_due",
        page_data={"alert_counts": _counts_by_kind(store, session.user), "reload_on_alerts": True},
        rows=due,
        max_note=MAX_NOTE,
    )
