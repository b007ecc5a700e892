"""GET /healthz: 200 when the broker link is up and InfluxDB accepts writes, else 503."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from cloud_ingest.api.deps import Service

router = APIRouter()


@router.get("/healthz")
def healthz(service: Service) -> JSONResponse:
    body = service.health()
    return JSONResponse(body, status_code=200 if body["status"] == "ok" else 503)
