"""The /audit page: the audit log with filters and a CSV download, for prefecture admins."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query
from fastapi.responses import HTMLResponse

from cloud_ingest import i18n
from cloud_ingest.console.audit import Action, ObjectKind
from cloud_ingest.web.deps import (
    AuditLogDep,
    AuditQueryDep,
    PageDep,
    ServiceDep,
    require_prefecture_admin,
)
from cloud_ingest.web.schemas.audit import AuditRowOut

router = APIRouter(dependencies=[Depends(require_prefecture_admin)])
PER_PAGE = 100


@router.get("/audit", response_class=HTMLResponse, include_in_schema=False)
def audit_page(
    ctx: PageDep,
    log: AuditLogDep,
    service: ServiceDep,
    query: AuditQueryDep,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
) -> HTMLResponse:
    tz = service.settings.tz
    rows, total = log.find(query.where, limit=PER_PAGE, offset=(page - 1) * PER_PAGE)
    fields = query.fields
    actions = [(a.value, i18n.t(f"audit_action_{a.value}", ctx.lang)) for a in Action]
    kinds = [(k.value, i18n.t(f"audit_kind_{k.value}", ctx.lang)) for k in ObjectKind]
    return ctx.render(
        "audit.html",
        active="audit",
        title_key="audit_log",
        rows=[AuditRowOut.of(r, tz) for r in rows],
        total=total,
        page=page,
        pages=max(1, -(-total // PER_PAGE)),
        fields=fields,
        actions=actions,
        kinds=kinds,
        action_names=dict(actions),
        kind_names=dict(kinds),
        csv_href="/api/v1/audit.csv?" + urlencode({k: v for k, v in fields.items() if v}),
        tz=tz,
    )
