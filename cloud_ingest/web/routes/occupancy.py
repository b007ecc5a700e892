"""Live occupancy, cut to the sites the user may view: GET /api/v1/occupancy (per site: today's
present, arrivals, meals, devices) and GET /api/v1/stream (Server-Sent Events, one `occupancy`
event per change, coalesced, with the same document)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import StreamingResponse

from cloud_ingest.console.overview import Overview
from cloud_ingest.console.roles import User
from cloud_ingest.web import sse
from cloud_ingest.web.deps import OverviewDep, SessionAliveDep
from cloud_ingest.web.security import NOT_FOUND, CurrentUser

router = APIRouter()


@router.get("/api/v1/occupancy")
def get_occupancy(
    overview: OverviewDep, user: CurrentUser, site: str | None = None
) -> dict[str, Any]:
    doc = overview.occupancy(user, site)
    if site is not None and not doc["sites"]:
        # Unknown and not-yours look the same, so site ids elsewhere cannot be probed.
        raise HTTPException(404, NOT_FOUND)
    return doc


async def _events(
    request: Request,
    overview: Overview,
    alive: Callable[[], bool],
    user: User,
    site: str | None,
) -> AsyncIterator[str]:
    yield "retry: 2000\n\n"
    yield sse.event("occupancy", overview.occupancy(user, site))
    async for changed in sse.changes(request, overview.live, alive):
        if changed:
            yield sse.event("occupancy", overview.occupancy(user, site))
        else:
            yield ": keepalive\n\n"


@router.get("/api/v1/stream")
async def stream(
    request: Request,
    overview: OverviewDep,
    alive: SessionAliveDep,
    user: CurrentUser,
    site: str | None = None,
) -> StreamingResponse:
    if site is not None and site not in overview.visible(user):
        raise HTTPException(404, NOT_FOUND)
    return sse.stream_response(_events(request, overview, alive, user, site))
