"""Monthly reports as JSON, CSV and Excel: /api/v1/reports/monthly[.csv|.xlsx].

Any role may export the areas it is granted (Action.EXPORT); an area outside them answers 404.
The "visits made" figure comes from the app's visits source (`deps.VisitsDep`) when it has one.
"""

from __future__ import annotations

import io

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response, StreamingResponse

from cloud_ingest.console import meal_sheet as ms
from cloud_ingest.console import subsidy
from cloud_ingest.console.exports import CSV_MEDIA_TYPE, XLSX_MEDIA_TYPE, iter_csv, write_xlsx
from cloud_ingest.console.reports import (
    DAILY_HEADER,
    MonthlyReport,
    csv_rows,
    report_filename,
    xlsx_sheets,
)
from cloud_ingest.console.roles import Action, can
from cloud_ingest.errors import AreaError, ReportError
from cloud_ingest.registry import areas
from cloud_ingest.web.audit_trail import note
from cloud_ingest.web.deps import MealSheetDep, ReportDep
from cloud_ingest.web.schemas.errors import ERRORS, UNAVAILABLE
from cloud_ingest.web.schemas.reports import MealSheetOut, ReportOut, SubsidyIn, SubsidyOut
from cloud_ingest.web.security import (
    FORBIDDEN,
    NOT_FOUND,
    AccountStoreDep,
    CurrentUser,
    csrf_protect,
)
from warmcard.timestamps import now_us

router = APIRouter(
    tags=["reports"], dependencies=[Depends(csrf_protect)], responses={**ERRORS, **UNAVAILABLE}
)


def _attachment(report: MonthlyReport, extension: str) -> dict[str, str]:
    return {"Content-Disposition": f'attachment; filename="{report_filename(report, extension)}"'}


@router.get("/api/v1/reports/monthly", response_model=ReportOut)
def monthly(report: ReportDep) -> ReportOut:
    """Meals per canteen per day, attendance per site per day, distinct elders, visits."""
    return ReportOut.of(report)


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


def _sheet_attachment(sheet: ms.MealSheet, extension: str) -> dict[str, str]:
    return {"Content-Disposition": f'attachment; filename="{ms.sheet_filename(sheet, extension)}"'}


@router.get("/api/v1/reports/meals", response_model=MealSheetOut)
def meals(request: Request, sheet: MealSheetDep) -> MealSheetOut:
    """Per-elder meals per day and period (hand-recorded marked), subsidy, totals."""
    note(request, results=len(sheet.rows))
    return MealSheetOut.of(sheet)


@router.get("/api/v1/reports/meals.csv", response_class=StreamingResponse)
def meals_csv(request: Request, sheet: MealSheetDep) -> StreamingResponse:
    """The meal sheet as CSV: per-elder rows, then totals per courtyard and township."""
    note(request, results=len(sheet.rows))
    return StreamingResponse(
        iter_csv(ms.HEADER, list(ms.csv_rows(sheet))),
        media_type=CSV_MEDIA_TYPE,
        headers=_sheet_attachment(sheet, "csv"),
    )


@router.get("/api/v1/reports/meals.xlsx", response_class=Response)
async def meals_xlsx(request: Request, sheet: MealSheetDep) -> Response:
    """The meal sheet as an Excel workbook: per-elder sheet and totals sheet."""
    note(request, results=len(sheet.rows))
    buffer = io.BytesIO()
    await run_in_threadpool(write_xlsx, buffer, ms.xlsx_sheets(sheet))
    return Response(
        buffer.getvalue(), media_type=XLSX_MEDIA_TYPE, headers=_sheet_attachment(sheet, "xlsx")
    )


@router.put("/api/v1/reports/subsidy", response_model=SubsidyOut)
def set_subsidy(body: SubsidyIn, user: CurrentUser, store: AccountStoreDep) -> SubsidyOut:
    """Set a county's subsidy category and yuan per meal (admins of that county)."""
    try:
        county = areas.parse_path(body.county)
    except AreaError:
        raise HTTPException(404, NOT_FOUND) from None
    amounts = {"breakfast": body.breakfast, "lunch": body.lunch, "dinner": body.dinner}
    with store.db.write() as conn:
        if areas.get_area(conn, county) is None or not can(user, Action.EXPORT, county):
            raise HTTPException(404, NOT_FOUND)
        if not can(user, Action.MANAGE_AREAS, county):
            raise HTTPException(403, FORBIDDEN)
        try:
            rate = subsidy.set_rate(conn, county, body.category, amounts, user.username, now_us())
        except ReportError as exc:
            raise HTTPException(400, str(exc)) from None
    return SubsidyOut(
        county=rate.county,
        category=rate.category,
        amounts={p: str(a) for p, a in rate.amounts.items()},
        updated_by=rate.updated_by,
    )
