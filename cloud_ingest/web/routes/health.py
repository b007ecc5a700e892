"""GET /healthz: 200 while the console's device link is up, else 503.

Anonymous callers (load balancers, systemd, `warmcard.command.servers.Console`) get only the
status; the details (stored taps received, live sync, registry version) need the metrics token.
Each ingest worker answers its own /healthz (cloud_ingest.worker).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from cloud_ingest.web.deps import MetricsTokenOk, ServiceDep

router = APIRouter(tags=["operations"])


@router.get(
    "/healthz",
    responses={
        200: {"description": '{"status": "ok"}; full details with the metrics token'},
        503: {"description": '{"status": "degraded"}'},
    },
)
def healthz(service: ServiceDep, token_ok: MetricsTokenOk) -> JSONResponse:
    body = service.health()
    code = 200 if body["status"] == "ok" else 503
    shown: dict[str, Any] = body if token_ok else {"status": body["status"]}
    return JSONResponse(shown, status_code=code)
