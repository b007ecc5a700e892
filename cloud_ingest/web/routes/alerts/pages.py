"""The alerts pages: /alerts (告警, filters; acknowledge and close for managers) and
/alerts/visits (需探访, longest unseen first, each with a 'record visit' form).

Their forms post to the JSON routes in `api`, which answer a form with a 303 back here.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from cloud_ingest import i18n
from cloud_ingest.alerts import wellbeing
from cloud_ingest.alerts.engine import AlertEngine
from cloud_ingest.alerts.models import KIND_NAMES, Kind, State
from cloud_ingest.alerts.naming import named, person_name, place_names
from cloud_ingest.alerts.store import AlertStore
from cloud_ingest.console.roles import Action, User, can, view_areas
from cloud_ingest.console.visits_due import due_rows
from cloud_ingest.web import render
from cloud_ingest.web.deps import AlertStoreDep, EngineDep, PageDep
from cloud_ingest.web.schemas.alerts import MAX_NOTE, parse_filters

router = APIRouter(tags=["alerts"])

STATE_BADGES = {State.OPEN: "bad", State.ACKNOWLEDGED: "warn", State.CLOSED: "ok"}


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
    ctx: PageDep,
    store: AlertStoreDep,
    engine: EngineDep,
    kind: str | None = None,
    state: str | None = None,
    site: str | None = None,
) -> HTMLResponse:
    """告警 Alerts: filters, and acknowledge/close for managers."""
    user = ctx.session.user
    lang = ctx.lang
    kinds, states = parse_filters(kind, state)
    if not states and state is None:
        states = [State.OPEN, State.ACKNOWLEDGED]  # closed ones only when asked for
    found = store.find(view_areas(user), kinds=kinds, states=states, site_id=site or None)
    tz = {s.site_id: s.tz for s in engine.registry.sites()}
    names = render.site_names(engine.registry, lang)
    places = place_names(names, engine.registry.devices(), lang == i18n.EN)
    people = engine.registry.people_homes(sorted({a.person_id for a in found if a.person_id}))
    rows = [
        {
            "id": a.id,
            "kind": a.kind.value,
            "subject": a.subject,
            "state": a.state.value,
            "kind_name": render.pick(KIND_NAMES[a.kind], lang),
            "site": names.get(a.site_id or "", a.site_id),
            "who": person_name(people, a.person_id),
            "detail": named(a.detail_en if lang == i18n.EN else a.detail_zh, a, people, places),
            "opened": _when(a.opened_at, tz.get(a.site_id or "")),
            "latest": _when(a.last_seen_at, tz.get(a.site_id or "")),
            "count": a.count,
            "state_name": i18n.t(f"alert_state_{a.state.value}", lang),
            "badge": STATE_BADGES[a.state],
            "can_act": a.state is not State.CLOSED and can(user, Action.ACK_ALERT, a.area_path),
        }
        for a in found
    ]
    return ctx.render(
        "alerts.html",
        active="alerts",
        title_key="nav_alerts",
        page_data={"alert_counts": _counts_by_kind(store, user), "reload_on_alerts": True},
        rows=rows,
        can_bulk=any(r["can_act"] and r["state"] == "open" for r in rows),
        kinds=[(k.value, render.pick(KIND_NAMES[k], lang)) for k in Kind],
        states=[(s.value, i18n.t(f"alert_state_{s.value}", lang)) for s in State],
        sites=[
            (s, names.get(s, s))
            for s in sorted(
                {a.site_id for a in found if a.site_id} | _shown_filter(user, engine, site)
            )
        ],
        kind=kind,
        state=state,
        site=site,
        here="/alerts" + (f"?{request.url.query}" if request.url.query else ""),
    )


@router.get("/alerts/visits", response_class=HTMLResponse)
def visits_page(ctx: PageDep, store: AlertStoreDep, engine: EngineDep) -> HTMLResponse:
    """需探访 Visits due, longest unseen first, each with a 'record visit' form."""
    lang = ctx.lang
    due = due_rows(store, engine.registry, ctx.session.user, engine.clock())
    people = engine.registry.people_homes([r["person_id"] for r in due])
    sites = render.site_names(engine.registry, lang)
    places = place_names(sites, engine.registry.devices(), lang == i18n.EN)
    for r in due:
        r["name"] = people.get(r["person_id"], ("", ""))[0]
        r["site_name"] = sites.get(r["site_id"] or "", r["site_id"])
        r["last_seen_site_name"] = sites.get(r["last_seen_site"] or "", r["last_seen_site"])
        r["flags"] = "、".join(
            render.pick(wellbeing.FLAG_NAMES.get(f, (f, f)), lang) for f in r["flags"]
        )
        r["detail"] = named(
            r["detail_en"] if lang == i18n.EN else r["detail_zh"], None, people, places
        )
    return ctx.render(
        "visits.html",
        active="alerts",
        title_key="visits_due",
        page_data={
            "alert_counts": _counts_by_kind(store, ctx.session.user),
            "reload_on_alerts": True,
        },
        rows=due,
        max_note=MAX_NOTE,
    )
