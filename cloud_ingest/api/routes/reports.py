"""Monthly reports: the /reports page and /api/v1/reports/monthly[.csv|.xlsx].

Mount with ``app.include_router(reports.router)``. Any role may export the areas it is granted
(Action.EXPORT); an area outside them answers 404. The "visits made" figure comes from
``app.state.visits`` (a `cloud_ingest.reports.VisitsSource`) when the app provides one.
"""

from __future__ import annotations

import io
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, Request, status
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, Response, StreamingResponse
from pydantic import BaseModel

from cloud_ingest import areas
from cloud_ingest.accounts import Action, can
from cloud_ingest.api.console_page import esc, render_page
from cloud_ingest.api.deps import Service
from cloud_ingest.api.routes.registry import ERRORS, ErrorOut
from cloud_ingest.api.security import NOT_FOUND, AccountStoreDep, SessionDep, csrf_protect
from cloud_ingest.api.visibility import Scope, ScopeDep, sites_in_area
from cloud_ingest.errors import IngestError, ReportError
from cloud_ingest.exports import CSV_MEDIA_TYPE, XLSX_MEDIA_TYPE, iter_csv, write_xlsx
from cloud_ingest.reports import (
    DAILY_HEADER,
    PERIODS,
    MonthlyReport,
    VisitsSource,
    csv_rows,
    monthly_report,
    parse_month,
    report_filename,
    xlsx_sheets,
)
from cloud_ingest.service import IngestService

UNAVAILABLE: dict[int | str, dict[str, object]] = {
    503: {"model": ErrorOut, "description": "InfluxDB unreachable; try again"}
}
router = APIRouter(
    tags=["reports"], dependencies=[Depends(csrf_protect)], responses={**ERRORS, **UNAVAILABLE}
)

MonthQ = Annotated[str, Query(pattern=r"^\d{4}-(0[1-9]|1[0-2])$", examples=["2026-11"])]
AreaQ = Annotated[str, Query(max_length=300, examples=["dali/eryuan/xishan"])]


class SiteOut(BaseModel):
    site_id: str
    name_zh: str
    tz: str


class DayOut(BaseModel):
    date: str
    site_id: str
    attendance: int
    meals: dict[str, int]
    meals_total: int


class ReportOut(BaseModel):
    area: str
    month: str
    sites: list[SiteOut]
    days: list[DayOut]
    meals_total: int
    elders_served: int
    visits: int | None
    generated_s: float


def _area(scope: Scope, conn_store: AccountStoreDep, area: str) -> str:
    try:
        path = areas.parse_path(area)
    except areas.AreaError:
        raise HTTPException(status.HTTP_404_NOT_FOUND, NOT_FOUND) from None
    if path != areas.ROOT and areas.get_area(conn_store.conn, path) is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, NOT_FOUND)
    if not can(scope.user, Action.EXPORT, path):
        raise HTTPException(status.HTTP_404_NOT_FOUND, NOT_FOUND)
    return path


def _make(
    request: Request, service: IngestService, scope: Scope, area: str, month: str
) -> MonthlyReport:
    sites = [s for s in map(service.registry.site, sites_in_area(scope, area)) if s is not None]
    visits: VisitsSource | None = getattr(request.app.state, "visits", None)
    try:
        return monthly_report(service.query_storage, sites, area, month, visits)
    except ReportError as exc:
        raise HTTPException(400, str(exc)) from None
    except IngestError as exc:
        raise HTTPException(503, f"报表暂不可用 report unavailable: {exc}") from None


def _out(report: MonthlyReport) -> ReportOut:
    return ReportOut(
        area=report.area,
        month=report.month,
        sites=[SiteOut(site_id=s.site_id, name_zh=s.name_zh, tz=s.tz) for s in report.sites],
        days=[
            DayOut(
                date=day.isoformat(),
                site_id=site.site_id,
                attendance=people,
                meals=meals,
                meals_total=sum(meals.values()),
            )
            for day, site, people, meals in report.daily()
        ],
        meals_total=report.meals_total,
        elders_served=report.elders_served,
        visits=report.visits,
        generated_s=round(report.generated_s, 4),
    )


@router.get("/api/v1/reports/monthly", response_model=ReportOut)
def monthly(
    request: Request,
    scope: ScopeDep,
    store: AccountStoreDep,
    service: Service,
    month: MonthQ,
    area: AreaQ = "",
) -> ReportOut:
    """Meals per canteen per day, attendance per site per day, distinct elders, visits."""
    return _out(_make(request, service, scope, _area(scope, store, area), month))


@router.get("/api/v1/reports/monthly.csv", response_class=StreamingResponse)
def monthly_csv(
    request: Request,
    scope: ScopeDep,
    store: AccountStoreDep,
    service: Service,
    month: MonthQ,
    area: AreaQ = "",
) -> StreamingResponse:
    """The report as CSV (UTF-8 with BOM, formulas neutralised)."""
    report = _make(request, service, scope, _area(scope, store, area), month)
    return StreamingResponse(
        iter_csv(DAILY_HEADER, list(csv_rows(report))),
        media_type=CSV_MEDIA_TYPE,
        headers={"Content-Disposition": f'attachment; filename="{report_filename(report, "csv")}"'},
    )


@router.get("/api/v1/reports/monthly.xlsx", response_class=Response)
async def monthly_xlsx(
    request: Request,
    scope: ScopeDep,
    store: AccountStoreDep,
    service: Service,
    month: MonthQ,
    area: AreaQ = "",
) -> Response:
    """The report as an Excel workbook: a summary sheet and a daily sheet."""
    path = _area(scope, store, area)
    report = await run_in_threadpool(_make, request, service, scope, path, month)
    buffer = io.BytesIO()
    await run_in_threadpool(write_xlsx, buffer, xlsx_sheets(report))
    return Response(
        buffer.getvalue(),
        media_type=XLSX_MEDIA_TYPE,
        headers={
            "Content-Disposition": f'attachment; filename="{report_filename(report, "xlsx")}"'
        },
    )


def _area_options(scope: Scope, store: AccountStoreDep, selected: str) -> str:
    paths: set[str] = set()
    for grant in scope.user.grants:
        paths.update(
            a.path for a in areas.areas_under(store.conn, grant.area) if a.level.value != "site"
        )
        if grant.area == areas.ROOT:
            paths.add(areas.ROOT)
    return "".join(
        f'<option value="{esc(p)}"{" selected" if p == selected else ""}>{esc(p or "/")}</option>'
        for p in sorted(paths)
    )


@router.get("/reports", response_class=HTMLResponse, include_in_schema=False)
def reports_page(
    request: Request,
    session: SessionDep,
    scope: ScopeDep,
    store: AccountStoreDep,
    service: Service,
    month: Annotated[str, Query(max_length=7)] = "",
    area: AreaQ = "",
) -> HTMLResponse:
    form = (
        '<form method="get" action="/reports"><label>区域 <span lang="en">Area</span> '
        f'<select name="area">{_area_options(scope, store, area)}</select></label> '
        '<label>月份 <span lang="en">Month</span> <input type="month" name="month" '
        f'value="{esc(month)}" required></label> '
        '<button>查看 <span lang="en">Show</span></button></form>'
    )
    body = form
    if month:
        try:
            parse_month(month)
        except ReportError as exc:
            body += f'<p class="error">{esc(exc)}</p>'
            return _page(session, body, 400)
        report = _make(request, service, scope, _area(scope, store, area), month)
        names = {s.site_id: s.name_zh for s in report.sites}
        rows = "".join(
            f"<tr><td>{day.isoformat()}</td><td>{esc(names.get(site.site_id))}</td>"
            f'<td class="num">{people}</td>'
            + "".join(f'<td class="num">{meals[p]}</td>' for p in PERIODS)
            + f'<td class="num">{sum(meals.values())}</td></tr>'
            for day, site, people, meals in report.daily()
            if people or any(meals.values())
        )
        query = f"area={esc(area)}&amp;month={esc(report.month)}"
        visits = report.visits if report.visits is not None else "未提供 not available"
        body += (
            f'<p>用餐合计 <span lang="en">Meals served</span>: {report.meals_total} · '
            f'用餐长者(去重) <span lang="en">Distinct elders served</span>: '
            f'{report.elders_served} · 探访次数 <span lang="en">Visits made</span>: '
            f"{esc(visits)}</p>"
            f'<p><a href="/api/v1/reports/monthly.csv?{query}">导出 CSV Export CSV</a> · '
            f'<a href="/api/v1/reports/monthly.xlsx?{query}">导出 Excel Export Excel</a></p>'
            "<table><thead><tr>"
            + "".join(f"<th>{esc(h)}</th>" for h in (DAILY_HEADER[0], *DAILY_HEADER[2:]))
            + "</tr></thead><tbody>"
            + rows
            + "</tbody></table>"
        )
    return _page(session, body)


def _page(session: SessionDep, body: str, status_code: int = 200) -> HTMLResponse:
    return render_page(
        "月度报表 Monthly report",
        body,
        username=session.user.username,
        csrf_token=session.csrf_token,
        active="/reports",
        status_code=status_code,
    )
