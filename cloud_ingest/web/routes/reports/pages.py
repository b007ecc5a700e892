"""The /reports page: pick an area and a month, see the month day by day, download it.

The same rules and figures as the JSON (`api`): an area outside the user's grants answers 404.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query
from fastapi.responses import HTMLResponse

from cloud_ingest import i18n
from cloud_ingest.console import meal_sheet as ms
from cloud_ingest.console.accounts import AccountStore
from cloud_ingest.console.reports import PERIODS, parse_month
from cloud_ingest.errors import ReportError
from cloud_ingest.registry import areas
from cloud_ingest.web import render
from cloud_ingest.web.deps import (
    MealSheetDep,
    PageDep,
    ScopeDep,
    ServiceDep,
    VisitsDep,
    build_report,
    report_area,
)
from cloud_ingest.web.schemas.errors import ERRORS, UNAVAILABLE
from cloud_ingest.web.schemas.reports import AreaQ
from cloud_ingest.web.security import AccountStoreDep, csrf_protect
from cloud_ingest.web.visibility import Scope

router = APIRouter(
    tags=["reports"], dependencies=[Depends(csrf_protect)], responses={**ERRORS, **UNAVAILABLE}
)


def _area_options(scope: Scope, store: AccountStore, lang: str) -> list[tuple[str, str]]:
    """(path, shown name) of every area above site level the user may report on."""
    found: dict[str, str] = {}
    with store.db.read() as conn:
        under = [(g.area, areas.areas_under(conn, g.area)) for g in scope.user.grants]
    for area, inside in under:
        for a in inside:
            if a.level.value != "site":
                found[a.path] = render.local_name(a.name_zh, a.name_en, lang)
        if area == areas.ROOT:
            found[areas.ROOT] = i18n.t("all", lang)
    return sorted(found.items())


@router.get("/reports", response_class=HTMLResponse, include_in_schema=False)
def reports_page(
    ctx: PageDep,
    scope: ScopeDep,
    store: AccountStoreDep,
    service: ServiceDep,
    visits: VisitsDep,
    month: Annotated[str, Query(max_length=7)] = "",
    area: AreaQ = "",
) -> HTMLResponse:
    lang = ctx.lang
    context: dict[str, Any] = {"report": None, "error": None, "days": [], "query": ""}
    status_code = 200
    if month:
        try:
            parse_month(month)
        except ReportError as exc:
            context["error"] = str(exc)
            status_code = 400
        else:
            path = report_area(scope, store, area)
            report = build_report(service, visits, scope, path, month)
            context["report"] = report
            context["query"] = urlencode({"area": area, "month": report.month})
            context["days"] = [
                {
                    "date": i18n.format_date(day, lang),
                    "site": render.local_name(site.name_zh, site.name_en, lang),
                    "attendance": people,
                    "meals": [meals[p] for p in PERIODS],
                    "total": sum(meals.values()),
                    "manual": report.manual_at(site.site_id, day),
                }
                for day, site, people, meals in report.daily()
                if people or any(meals.values())
            ]
    return ctx.render(
        "reports.html",
        active="reports",
        title_key="monthly_report",
        status_code=status_code,
        area_options=_area_options(scope, store, lang),
        area=area,
        month=month,
        **context,
    )


@router.get("/reports/meals", response_class=HTMLResponse, include_in_schema=False)
def meal_sheet_page(ctx: PageDep, sheet: MealSheetDep, area: AreaQ = "") -> HTMLResponse:
    """The per-elder meal sheet, print-ready (A4, signature lines)."""
    query = urlencode({"area": area, "month": sheet.month})
    return ctx.render(
        "meal_sheet.html",
        active="reports",
        title_key="meal_sheet",
        sheet=sheet,
        header=ms.HEADER,
        rows=list(ms.meal_rows(sheet)),
        totals_header=ms.TOTALS_HEADER,
        totals=list(ms.totals_rows(sheet)),
        query=query,
    )
