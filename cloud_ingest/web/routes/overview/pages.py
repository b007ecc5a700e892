"""The overview page, GET /: the script loads pages of sites from the API and follows its stream."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

from cloud_ingest.web import render
from cloud_ingest.web.deps import OverviewDep, PageDep

router = APIRouter()

# Message keys the overview script shows (shared keys of console.js come first).
PAGE_MESSAGES = (
    "present_now", "capacity", "arrivals_today", "meals_today", "breakfast", "lunch", "dinner",
    "meal_repeats", "kiosks", "kiosks_offline", "n_offline", "all_online", "n_sites", "page_of",
    "no_sites", "all_areas", "area", "live", "connecting", "reconnecting", "updated_at",
    "state_online", "state_offline", "state_stale", "state_unknown", "prefecture", "county",
    "township", "site", "loading",
)  # fmt: skip


# Alert tiles: (group of /api/v1/alerts/counts, where the tile leads, message key).
ALERT_GROUPS = (
    ("device", "/alerts", "device_alerts"),
    ("wellbeing", "/alerts/visits", "visits_due"),
    ("fraud", "/alerts", "fraud_alerts"),
)


@router.get("/", response_class=HTMLResponse)
def overview_page(ctx: PageDep, overview: OverviewDep) -> HTMLResponse:
    """The live overview; the script loads pages from the API and follows the delta stream."""
    return ctx.render(
        "overview.html",
        active="overview",
        title_key="overview",
        script="overview.js",
        live=True,
        page_data={
            "scope": overview.default_scope(ctx.session.user),
            "messages": render.messages(ctx.lang, PAGE_MESSAGES),
            "page_size": 50,
        },
        sorts=("area", "name", "-present", "-arrivals", "-meals", "-offline"),
        alert_groups=ALERT_GROUPS,
    )
