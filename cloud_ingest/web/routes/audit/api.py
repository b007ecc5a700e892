"""GET /api/v1/audit (a page of rows, newest first) and /api/v1/audit.csv (every matching row).

Prefecture admins only (an admin on the root or a prefecture); everyone else gets 403.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query
from fastapi.responses import StreamingResponse

from cloud_ingest.console.exports import CSV_MEDIA_TYPE, iter_csv
from cloud_ingest.web.deps import (
    AuditLogDep,
    AuditQueryDep,
    ServiceDep,
    require_prefecture_admin,
)
from cloud_ingest.web.schemas.audit import AuditPage, AuditRowOut
from cloud_ingest.web.schemas.errors import ERRORS

router = APIRouter(
    tags=["audit"], dependencies=[Depends(require_prefecture_admin)], responses=ERRORS
)

CSV_HEADER = (
    "序号 Seq",
    "时间 Time",
    "用户 User",
    "操作 Action",
    "对象类型 Object kind",
    "对象 Object",
    "详情 Detail",
    "来源 From",
    "状态 Status",
    "哈希 Hash",
)


@router.get("/api/v1/audit", response_model=AuditPage)
def audit_rows(
    log: AuditLogDep,
    service: ServiceDep,
    query: AuditQueryDep,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
    per_page: Annotated[int, Query(ge=1, le=500)] = 100,
) -> AuditPage:
    """Who did what to which object, newest first; filters by user, action, kind, object, days."""
    tz = service.settings.tz
    rows, total = log.find(query.where, limit=per_page, offset=(page - 1) * per_page)
    items = [AuditRowOut.of(r, tz) for r in rows]
    return AuditPage(total=total, page=page, per_page=per_page, items=items)


@router.get("/api/v1/audit.csv", response_class=StreamingResponse)
def audit_csv(log: AuditLogDep, service: ServiceDep, query: AuditQueryDep) -> StreamingResponse:
    """Every matching row, oldest first, with its hash (local times)."""
    tz = service.settings.tz
    rows = log.rows(query.where)
    body = iter_csv(CSV_HEADER, (_cells(AuditRowOut.of(r, tz)) for r in rows))
    return StreamingResponse(
        body,
        media_type=CSV_MEDIA_TYPE,
        headers={"Content-Disposition": 'attachment; filename="warmcard-audit.csv"'},
    )


def _cells(r: AuditRowOut) -> tuple[str | int, ...]:
    return (
        r.seq, r.at_local, r.username, r.action, r.object_kind, r.object_id, r.detail, r.client,
        r.status, r.hash,
    )  # fmt: skip
