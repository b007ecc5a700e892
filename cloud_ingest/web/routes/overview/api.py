"""The overview's JSON: GET /api/v1/overview (one page of sites + roll-ups) and
GET /api/v1/overview/stream (SSE deltas: only the sites that changed, and the roll-up)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import StreamingResponse

from cloud_ingest.console.overview import (
    MAX_PAGE_SIZE,
    SORTS,
    AreaNotVisible,
    Overview,
    OverviewQuery,
)
from cloud_ingest.console.roles import User
from cloud_ingest.registry import areas
from cloud_ingest.web import sse
from cloud_ingest.web.deps import OverviewDep, SessionAliveDep
from cloud_ingest.web.security import NOT_FOUND, CurrentUser

router = APIRouter()


def _scope(overview: Overview, user: User, area: str | None) -> str:
    try:
        return overview.scope(user, area)
    except AreaNotVisible:
        raise HTTPException(404, NOT_FOUND) from None


SortParam = Annotated[str, Query(pattern="^-?(" + "|".join(s for s in SORTS if s[0] != "-") + ")$")]


@router.get("/api/v1/overview")
def get_overview(
    user: CurrentUser,
    overview: OverviewDep,
    area: str | None = None,
    q: Annotated[str, Query(max_length=100)] = "",
    offline: bool = False,
    has_meals: bool = False,
    sort: SortParam = "area",
    page: Annotated[int, Query(ge=1)] = 1,
    page_size: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = 50,
) -> dict[str, Any]:
    """Today per site for the user's areas: filtered, sorted, one page, with area roll-ups."""
    query = OverviewQuery(area, q, offline, has_meals, sort, page, page_size)
    try:
        return overview.page(user, query)
    except AreaNotVisible:
        raise HTTPException(404, NOT_FOUND) from None


async def _deltas(
    request: Request,
    overview: Overview,
    alive: Callable[[], bool],
    user: User,
    scope: str,
    site: str | None,
) -> AsyncIterator[str]:
    live = overview.live
    version = live.version
    only = {site} if site else None
    # Kiosks turn "stale" by the clock, with no event: compare on every idle tick too.
    offline = {r["site_id"]: r["kiosks_offline"] for r in overview.rows_for(user, only, scope)}
    yield "retry: 2000\n\n"
    yield sse.event("hello", {"version": version, "scope": scope})
    async for changed in sse.changes(request, live, alive):
        if changed:
            version, sites = live.changes_since(version)
            wanted = sites if only is None else (only if sites is None else sites & only)
            rows = overview.rows_for(user, wanted, scope)
        else:
            current = overview.rows_for(user, only, scope)
            rows = [r for r in current if offline.get(r["site_id"]) != r["kiosks_offline"]]
            if not rows:
                yield ": keepalive\n\n"
                continue
        for r in rows:
            offline[r["site_id"]] = r["kiosks_offline"]
        if rows:
            yield sse.event("sites", {"version": version, "sites": rows})
            if site is None:
                yield sse.event("rollup", overview.rollup(user, scope))


@router.get("/api/v1/overview/stream")
async def overview_stream(
    request: Request,
    user: CurrentUser,
    overview: OverviewDep,
    alive: SessionAliveDep,
    area: str | None = None,
    site: str | None = None,
) -> StreamingResponse:
    """SSE: `sites` events carry only the changed sites visible in the scope (or just `site`)."""
    scope = _scope(overview, user, area)
    if site is not None and site not in overview.visible(user):
        raise HTTPException(404, NOT_FOUND)
    if site is not None:
        scope = areas.ROOT
    return sse.stream_response(_deltas(request, overview, alive, user, scope, site))
