"""闭院日历 The closure calendar page (/alerts/closures): the closures inside or above the user's
areas; managers add (an area of theirs, first and last day, reason) and delete."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

from cloud_ingest.console import care
from cloud_ingest.web import render
from cloud_ingest.web.audit_trail import note
from cloud_ingest.web.deps import PageDep, ServiceDep
from cloud_ingest.web.security import AccountStoreDep

router = APIRouter(tags=["care"], include_in_schema=False)


@router.get("/alerts/closures", response_class=HTMLResponse)
def closures_page(ctx: PageDep, service: ServiceDep, store: AccountStoreDep) -> HTMLResponse:
    user = ctx.session.user
    engine = service.alerts
    found = care.visible_closures(engine, user)
    choices = care.closure_areas(user, engine.refresh_site_paths().values())
    with store.db.read() as conn:
        names = render.area_names(conn, [c.area_path for c, _ in found] + choices, ctx.lang)
    note(ctx.request, results=len(found))
    return ctx.render(
        "closures.html",
        active="alerts",
        title_key="nav_closures",
        rows=found,
        area_choices=choices,
        area_names=names,
    )
