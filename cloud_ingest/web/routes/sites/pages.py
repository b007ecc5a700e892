"""One site's page, GET /sites/{site_id}: today, kiosks and who is present, kept live by its script.

The site comes through `SiteAccess`: outside the user's areas it answers 404, like a site that
does not exist.
"""

from __future__ import annotations

from fastapi import APIRouter, HTTPException
from fastapi.responses import HTMLResponse

from cloud_ingest.console.roles import Action, can
from cloud_ingest.web import render
from cloud_ingest.web.deps import OverviewDep, PageDep
from cloud_ingest.web.security import NOT_FOUND, SiteAccess

router = APIRouter()

PAGE_MESSAGES = (
    "present_now", "capacity", "arrivals_today", "meals_today", "breakfast", "lunch", "dinner",
    "meal_repeats", "unknown_cards", "kiosks", "who_present", "since", "nobody_present",
    "visitor", "last_heartbeat", "outbox_depth", "reader", "mode_entrance", "mode_canteen",
    "reader_ok", "reader_fault", "reader_absent",
    "state_online", "state_offline", "state_stale", "state_unknown", "repeat_flag",
    "no_repeats", "daily_arrivals", "daily_meals", "meals_per_slot", "live", "connecting",
    "reconnecting", "updated_at", "loading",
)  # fmt: skip


@router.get("/sites/{site_id}", response_class=HTMLResponse)
def site_page(ref: SiteAccess, ctx: PageDep, overview: OverviewDep) -> HTMLResponse:
    row = overview.site_row(ctx.session.user, ref.site_id)
    if row is None:
        raise HTTPException(404, NOT_FOUND)
    return ctx.render(
        "site.html",
        active="overview",
        title_key="site",
        script="site.js",
        live=True,
        page_data={"site_id": ref.site_id, "messages": render.messages(ctx.lang, PAGE_MESSAGES)},
        site=row,
        site_name=render.local_name(row["name_zh"], row["name_en"], ctx.lang),
        records_meals=can(ctx.session.user, Action.RECORD_MEAL, ref.area_path),
    )
