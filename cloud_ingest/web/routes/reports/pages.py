"""The /reports page: pick an area and a month, see the month day by day, download it.

The same rules and figures as the JSON (`api`): an area outside the user's grants answers 404.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, HTTPException, Query, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from cloud_ingest import i18n
from cloud_ingest.console import meal_sheet as ms
from cloud_ingest.console import subsidy
from cloud_ingest.console.accounts import AccountStore
from cloud_ingest.console.reports import PERIODS, parse_month
from cloud_ingest.errors import ReportError
from cloud_ingest.registry import areas
from cloud_ingest.web import render
from cloud_ingest.web.audit_trail import note
from cloud_ingest.web.deps import (
    PageDep,
    ScopeDep,
    ServiceDep,
    VisitsDep,
    build_report,
    get_meal_sheet,
    report_area,
    set_county_subsidy,
    subsidy_counties,
)
from cloud_ingest.web.render import PageContext
from cloud_ingest.web.schemas.errors import ERRORS, UNAVAILABLE
from cloud_ingest.web.schemas.reports import AreaQ, MonthQ
from cloud_ingest.web.security import AccountStoreDep, csrf_protect
from cloud_ingest.web.visibility import Scope
from warmcard import localtime

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
            try:
                path = report_area(scope, store, area)
                report = build_report(service, store, visits, scope, path, month)
            except HTTPException as exc:
                return _error_page(ctx, exc)
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
        # The field starts at this month, local time; the report waits for the user's "show".
        month=month or localtime.to_local(service.clock(), service.settings.tz).strftime("%Y-%m"),
        **context,
    )


def _error_page(ctx: PageContext, exc: HTTPException) -> HTMLResponse:
    """A report the user may not have (404), a bad month (400) or no InfluxDB (503), as a page."""
    return ctx.not_done(exc.detail, exc.status_code, active="reports", back="/reports")


def _one_side(label: str, lang: str) -> str:
    """'乡镇' or 'Township' of an export heading '乡镇 Township' (zh-CN never holds a space)."""
    zh, _, en = label.partition(" ")
    return render.pick((zh, en or zh), lang)


@router.get("/reports/meals", response_class=HTMLResponse, include_in_schema=False)
def meal_sheet_page(
    ctx: PageDep,
    scope: ScopeDep,
    store: AccountStoreDep,
    service: ServiceDep,
    month: MonthQ,
    area: AreaQ = "",
) -> HTMLResponse:
    """The per-elder meal sheet, print-ready (A4, signature lines)."""
    try:
        sheet = get_meal_sheet(scope, store, service, month, area)
    except HTTPException as exc:
        return _error_page(ctx, exc)
    query = urlencode({"area": area, "month": sheet.month})
    lang = ctx.lang
    return ctx.render(
        "meal_sheet.html",
        active="reports",
        title_key="meal_sheet",
        sheet=sheet,
        area_name=sheet.area_names.get(sheet.area) or sheet.area or i18n.t("all", lang),
        # The exports keep "乡镇 Township"; a page shows one language, like every console table.
        header=[_one_side(h, lang) for h in ms.HEADER],
        rows=list(ms.meal_rows(sheet, lambda pair: render.pick(pair, lang))),
        totals_header=[_one_side(h, lang) for h in ms.TOTALS_HEADER],
        totals=list(ms.totals_rows(sheet, lambda pair: render.pick(pair, lang))),
        query=query,
    )


FormAmount = Annotated[str, Form(max_length=12)]


def _subsidy_page(
    ctx: PageContext, store: AccountStore, *, saved: str = "", error: str = "", code: int = 200
) -> HTMLResponse:
    lang = ctx.lang
    counties = []
    for area, editable in subsidy_counties(ctx.session.user, store):
        with store.db.read() as conn:
            rate = subsidy.get_rate(conn, area.path)
        counties.append(
            {
                "path": area.path,
                "name": render.local_name(area.name_zh, area.name_en, lang),
                "rate": rate,
                "editable": editable,
                "changed": i18n.format_ts(rate.updated_us) if rate else "",
            }
        )
    return ctx.render(
        "subsidy.html",
        active="reports",
        title_key="subsidy_rates",
        status_code=code,
        counties=counties,
        periods=PERIODS,
        saved=saved,
        error=error,
    )


@router.get("/reports/subsidy", response_class=HTMLResponse, include_in_schema=False)
def subsidy_page(
    ctx: PageDep, store: AccountStoreDep, saved: Annotated[str, Query(max_length=130)] = ""
) -> HTMLResponse:
    """Each county the user sees with its category and yuan per meal; a form where they may set."""
    return _subsidy_page(ctx, store, saved=saved)


@router.post("/reports/subsidy", response_class=HTMLResponse, include_in_schema=False)
def subsidy_form(
    request: Request,
    ctx: PageDep,
    store: AccountStoreDep,
    county: Annotated[str, Form(max_length=130)],
    category: Annotated[str, Form(max_length=60)],
    breakfast: FormAmount = "0",
    lunch: FormAmount = "0",
    dinner: FormAmount = "0",
) -> Response:
    """The form: back to the page with the county saved, or the page again with the error."""
    note(request, object=county)
    amounts = {"breakfast": breakfast, "lunch": lunch, "dinner": dinner}
    try:
        old, new = set_county_subsidy(ctx.session.user, store, county, category, amounts)
    except HTTPException as exc:
        return _subsidy_page(ctx, store, error=str(exc.detail), code=exc.status_code)
    note(request, old=subsidy.as_detail(old), new=subsidy.as_detail(new))
    return RedirectResponse(
        f"/reports/subsidy?{urlencode({'saved': new.county})}", status.HTTP_303_SEE_OTHER
    )
