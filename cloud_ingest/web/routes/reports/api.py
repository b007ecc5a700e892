"""Monthly reports as JSON, CSV and Excel: /api/v1/reports/monthly[.csv|.xlsx].

Any role may export the areas it is granted (Action.EXPORT); an area outside them answers 404.
The "visits made" figure comes from the app's visits source (`deps.VisitsDep`) when it has one.
"""

from __future__ import annotations

import io

from fastapi import APIRouter, Depends
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response, StreamingResponse

from cloud_ingest.console.exports import CSV_MEDIA_TYPE, XLSX_MEDIA_TYPE, iter_csv, write_xlsx
from cloud_ingest.console.reports import (
    DAILY_HEADER,
    MonthlyReport,
    csv_rows,
    report_filename,
    xlsx_sheets,
)
from cloud_ingest.web.deps import ReportDep
from cloud_ingest.web.schemas.errors import ERRORS, UNAVAILABLE
from cloud_ingest.web.schemas.reports import ReportOut
from cloud_ingest.web.security import csrf_protect

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
