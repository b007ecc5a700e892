"""GET /api/v1/stream: Server-Sent Events, one `occupancy` event per change (coalesced), with
the same document as /api/v1/occupancy, cut to the user's sites."""

from __future__ import annotations

from collections.abc import AsyncIterator

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import StreamingResponse

from cloud_ingest.console.accounts import User
from cloud_ingest.console.overview import Overview
from cloud_ingest.service import IngestService
from cloud_ingest.web import sse
from cloud_ingest.web.deps import OverviewDep, Service
from cloud_ingest.web.routes.occupancy import occupancy_document
from cloud_ingest.web.security import NOT_FOUND, CurrentUser

router = APIRouter()


async def _events(
    request: Request, service: IngestService, overview: Overview, user: User, site: str | None
) -> AsyncIterator[str]:
    alive = sse.session_checker(request)
    yield "retry: 2000\n\n"
    yield sse.event("occupancy", occupancy_document(service, overview, user, site))
    async for changed in sse.changes(request, service.live, alive):
        if changed:
            yield sse.event("occupancy", occupancy_document(service, overview, user, site))
        else:
            yield ": keepalive\n\n"


@router.get("/api/v1/stream")
async def stream(
    request: Request,
    service: Service,
    overview: OverviewDep,
    user: CurrentUser,
    site: str | None = None,
) -> StreamingResponse:
    if site is not None and site not in overview.visible(user):
        raise HTTPException(404, NOT_FOUND)
    return sse.stream_response(_events(request, service, overview, user, site))
