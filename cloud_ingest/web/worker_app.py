"""An ingest worker's HTTP face: /healthz and /metrics only (the worker serves no people)."""

from __future__ import annotations

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from cloud_ingest.web.lifespan import running
from cloud_ingest.web.prometheus import WorkerCollector
from cloud_ingest.web.security import bearer_ok
from cloud_ingest.worker import IngestWorker


def create_health_app(worker: IngestWorker) -> FastAPI:
    """The worker's HTTP face: /healthz (status for anyone, details with the metrics token) and
    /metrics (Prometheus, bearer metrics_token). Its lifespan starts and stops the worker."""
    app = FastAPI(
        title="Warmcard ingest worker",
        lifespan=running(worker.start, worker.stop),
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
    )
    token = worker.settings.metrics_token
    registry = CollectorRegistry()
    registry.register(WorkerCollector(worker))

    @app.get("/healthz")
    def healthz(request: Request) -> JSONResponse:
        health = worker.health()
        code = 200 if health["status"] == "ok" else 503
        if bearer_ok(request, token):
            return JSONResponse(health, status_code=code)
        return JSONResponse({"status": health["status"]}, status_code=code)

    @app.get("/metrics")
    def metrics(request: Request) -> Response:
        if token is None:
            return Response(status_code=404)
        if not bearer_ok(request, token):
            return Response(status_code=401, headers={"WWW-Authenticate": "Bearer"})
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return app
