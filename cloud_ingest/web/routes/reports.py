"""Monthly reports: the /reports page and /api/v1/reports/monthly[.csv|.xlsx].

Mount with ``app.include_router(reports.router)``. Any role may export the areas it is granted
(Action.EXPORT); an area outside them answers 404. The "visits made" figure comes from
``app.state.visits`` (a `cloud_ingest.console.reports.VisitsSource`) when the app provides one.
"""

from __future__ import annotations

import io
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, HTTPException, Query, Request, status
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, Response, StreamingResponse
from pydantic import BaseModel

from cloud_ingest import i18n
from cloud_ingest.console.accounts import Action, can
from cloud_ingest.console.exports import CSV_MEDIA_TYPE, XLSX_MEDIA_TYPE, iter_csv, write_xlsx
from cloud_ingest.console.reports import (
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
from cloud_ingest.errors import IngestError, ReportError
from cloud_ingest.registry import areas
from cloud_ingest.service import IngestService
from cloud_ingest.web import pages
from cloud_ingest.web.deps import Service
from cloud_ingest.web.routes.registry import ERRORS, ErrorOut
from cloud_ingest.web.security import NOT_FOUND, AccountStoreDep, SessionDep, csrf_protect
from cloud_ingest.web.visibility import Scope, ScopeDep

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
    inside = areas.sites_in(area, scope.view, scope.paths)
    sites = [s for s in map(service.registry.site, inside) if s is not None]
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


def _requested_report(
    request: Request,
    scope: ScopeDep,
    store: AccountStoreDep,
    service: Service,
    month: MonthQ,
    area: AreaQ = "",
) -> MonthlyReport:
    # A plain def: FastAPI runs it in the thread pool, so the InfluxDB queries never block
    # the event loop, also for the async xlsx handler.
    return _make(request, service, scope, _area(scope, store, area), month)


ReportDep = Annotated[MonthlyReport, Depends(_requested_report)]


def _attachment(report: MonthlyReport, extension: str) -> dict[str, str]:
    return {"Content-Disposition": f'attachment; filename="{report_filename(report, extension)}"'}


@router.get("/api/v1/reports/monthly", response_model=ReportOut)
def monthly(report: ReportDep) -> ReportOut:
    """Meals per canteen per day, attendance per site per day, distinct elders, visits."""
    return _out(report)


@router.get("/api/v1/reports/monthly.csv", response_class=StreamingResponse)
def monthly_csv(report: ReportDep) -> StreamingResponse:
    """The report as CSV (UTF-8 with BOM, formulas neutralised)."""
    return StreamingResponse(
        iter_csv(DAILY_HEADER, list(csv_rows(report))),
        media_type=CSV_MEDIA_TYPE,
        headers=_attachment(report, "csv"),
    )


@router.get("/api/v1/reports/monthly.xlsx", response_class=Response)
async def monthly_xlsx(report: ReportDep) -> Response:
    """The report as an Excel workbook: a summary sheet and a daily sheet."""
    buffer = io.BytesIO()
    await run_in_threadpool(write_xlsx, buffer, xlsx_sheets(report))
    return Response(
        buffer.getvalue(), media_type=XLSX_MEDIA_TYPE, headers=_attachment(report, "xlsx")
    )


def _area_options(scope: Scope, store: AccountStoreDep, lang: str) -> list[tuple[str, str]]:
    """(path, shown name) of every area above site level the user may report on."""
    found: dict[str, str] = {}
    for grant in scope.user.grants:
        for a in areas.areas_under(store.conn, grant.area):
            if a.level.value != "site":
                found[a.path] = a.name_en if lang == i18n.EN and a.name_en else a.name_zh
        if grant.area == areas.ROOT:
            found[areas.ROOT] = i18n.t("all", lang)
    return sorted(found.items())


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
    lang = pages.page_lang(request)
    context: dict[str, Any] = {"report": None, "error": None, "days": [], "query": ""}
    status_code = 200
    if month:
        try:
            parse_month(month)
        except ReportError as exc:
            context["error"] = str(exc)
            status_code = 400
        else:
            report = _make(request, service, scope, _area(scope, store, area), month)
            context["report"] = report
            context["query"] = urlencode({"area": area, "month": report.month})
            context["days"] = [
                {
                    "date": i18n.format_date(day, lang),
                    "site": site.name_en if lang == i18n.EN and site.name_en else site.name_zh,
                    "attendance": people,
                    "meals": [meals[p] for p in PERIODS],
                    "total": sum(meals.values()),
                }
                for day, site, people, meals in report.daily()
                if people or any(meals.values())
            ]
    return pages.render(
        request,
        "reports.html",
        session,
        active="reports",
        title_key="monthly_report",
        status_code=status_code,
        area_options=_area_options(scope, store, lang),
        area=area,
        month=month,
        **context,
    )
