"""GET /api/v1/stream: Server-Sent Events, one `occupancy` event per change (coalesced)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse

from cloud_ingest.api.deps import Service
from cloud_ingest.api.routes.occupancy import occupancy_document
from cloud_ingest.service import IngestService

router = APIRouter()

COALESCE_S = 0.1  # several batches within this window become one push
KEEPALIVE_S = 15.0  # a comment line keeps proxies from closing an idle stream


async def _events(request: Request, service: IngestService, site: str | None) -> AsyncIterator[str]:
    loop = asyncio.get_running_loop()
    changed = asyncio.Event()

    def notify() -> None:  # called from the consumer's thread
        loop.call_soon_threadsafe(changed.set)

    service.live.add_listener(notify)
    try:
        yield "retry: 2000\n\n"
        while True:
            changed.clear()
            doc = occupancy_document(service, site)
            yield f"event: occupancy\ndata: {json.dumps(doc, ensure_ascii=False)}\n\n"
            try:
                await asyncio.wait_for(changed.wait(), KEEPALIVE_S)
            except TimeoutError:
                if await request.is_disconnected():
                    return
                yield ": keepalive\n\n"
                continue
            await asyncio.sleep(COALESCE_S)
    finally:
        service.live.remove_listener(notify)


@router.get("/api/v1/stream")
async def stream(request: Request, service: Service, site: str | None = None) -> StreamingResponse:
    return StreamingResponse(
        _events(request, service, site),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
