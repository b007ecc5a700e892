"""GET /metrics (Prometheus text format) behind a bearer token; /healthz details use the same token.

Mount with ``app.include_router(metrics.router)``. The token is `metrics_token` in the ingest
settings; without one /metrics is off (404). Figures are read at scrape time from the service
(`cloud_ingest.web.prometheus`): ingest counters, consumer queue, live-state sizes, alerts not
closed by kind.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, HTTPException, status
from fastapi.responses import Response
from prometheus_client import generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from cloud_ingest.web.deps import MetricsRegistryDep, MetricsTokenOk, ServiceDep

router = APIRouter(tags=["operations"])


def require_metrics_token(service: ServiceDep, token_ok: MetricsTokenOk) -> None:
    """404 while /metrics is off, 401 without the token; before any figure is read."""
    if service.settings.metrics_token is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "metrics off: set metrics_token")
    if not token_ok:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "bearer token required",
            headers={"WWW-Authenticate": 'Bearer realm="warmcard-metrics"'},
        )


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST: {}}}, 401: {}, 404: {}},
    dependencies=[Depends(require_metrics_token)],
)
def metrics(registry: MetricsRegistryDep) -> Response:
    """Prometheus metrics; needs `Authorization: Bearer <metrics_token>`."""
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
