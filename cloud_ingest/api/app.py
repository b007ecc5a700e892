"""FastAPI app; its lifespan starts and stops the ingest service (consumer and live state).

Endpoints: GET /api/v1/occupancy[?site=ID], GET /api/v1/stream[?site=ID] (SSE, event
`occupancy`, same document), GET /healthz (200 ok / 503 degraded; details with the metrics
token), GET /metrics (Prometheus, bearer metrics_token), GET / (live page).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
from fastapi import FastAPI

from cloud_ingest.api.routes import health, metrics, occupancy, page, stream
from cloud_ingest.service import IngestService
from cloud_ingest.settings import IngestSettings


def create_app(
    settings: IngestSettings | None = None, *, service: IngestService | None = None
) -> FastAPI:
    """An app owning `service` (built from `settings` if not given)."""
    if service is None:
        service = IngestService(settings or IngestSettings())
    svc = service

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await anyio.to_thread.run_sync(svc.start)
        try:
            yield
        finally:
            await anyio.to_thread.run_sync(svc.stop)

    app = FastAPI(title="Warmcard ingest", version="1", lifespan=lifespan)
    app.state.service = svc
    app.include_router(occupancy.router)
    app.include_router(stream.router)
    app.include_router(health.router)
    app.include_router(metrics.router)
    app.include_router(page.router)
    return app
