"""GET /api/v1/reconcile: gaps and conflicts per device and local day (cloud_ingest.ops.reconcile).

Unauthenticated like the other routes for now; it is for administrators and will sit behind the
console's admin role.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, HTTPException, Query

from cloud_ingest.errors import IngestError
from cloud_ingest.ops.reconcile import check, resolve_days
from cloud_ingest.web.deps import ServiceDep

router = APIRouter()


@router.get("/api/v1/reconcile")
def get_reconcile(
    service: ServiceDep,
    device: str | None = None,
    site: str | None = None,
    day: str | None = None,
    from_: Annotated[str | None, Query(alias="from")] = None,
    to: str | None = None,
) -> dict[str, Any]:
    registry = service.registry
    if device is not None:
        device_ids = [device]
    elif site is not None:
        device_ids = [d.device_id for d in registry.devices(site)]
        if not device_ids:
            raise HTTPException(404, f"未知站点或无设备 Unknown site or no devices: {site}")
    else:
        device_ids = [d.device_id for d in registry.devices()]
    try:
        today = datetime.now(ZoneInfo(service.settings.tz)).date()
        first, last = resolve_days(day, from_, to, today)
        statuses = {d: service.live.device_status(d) for d in device_ids}
        report = check(
            service.query_storage,
            registry,
            device_ids,
            (first, last),
            statuses=statuses,
            seen=service.seen,
            default_tz=service.settings.tz,
        )
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from None
    except IngestError as exc:
        raise HTTPException(503, f"对账失败 Reconciliation failed: {exc}") from None
    return report.as_json()
