"""What routes depend on, as Annotated aliases: the ingest service and what the app builds over it,
the user's registry scope, the page being rendered, the requested monthly report, the metrics
token and live-session checks.

Only this module (and the login dependencies in `security`) reads ``app.state``; `create_app`
fills it: ``service`` always, ``overview`` and ``visits`` in the full app (apps that mount a few
routers in tests set only ``service``).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request, status
from prometheus_client import CollectorRegistry

from cloud_ingest import i18n
from cloud_ingest.alerts.engine import AlertEngine
from cloud_ingest.alerts.store import AlertStore
from cloud_ingest.console import hand_meals, subsidy
from cloud_ingest.console.accounts import AccountStore
from cloud_ingest.console.audit import AuditLog
from cloud_ingest.console.meal_sheet import MealSheet, build_meal_sheet
from cloud_ingest.console.overview import Overview
from cloud_ingest.console.reports import MonthlyReport, VisitsSource, monthly_report
from cloud_ingest.console.roles import Action, Role, User, can
from cloud_ingest.errors import AreaError, HandMealRefused, IngestError, ReportError
from cloud_ingest.pipeline.lineprotocol import HAND_DEVICE
from cloud_ingest.pipeline.live import LiveEvent
from cloud_ingest.registry import areas
from cloud_ingest.registry import queries as rc
from cloud_ingest.registry.names import initials
from cloud_ingest.service import ConsoleService
from cloud_ingest.web import render, sse
from cloud_ingest.web.prometheus import ConsoleCollector
from cloud_ingest.web.render import PageContext
from cloud_ingest.web.schemas.audit import AuditQuery, DayQ, ObjectQ, UserQ, WordQ, audit_filter
from cloud_ingest.web.schemas.reports import AreaQ, MonthQ
from cloud_ingest.web.security import (
    FORBIDDEN,
    NOT_FOUND,
    SESSION_COOKIE,
    AccountStoreDep,
    AuthConfigDep,
    CurrentUser,
    SessionDep,
    SiteRef,
    bearer_ok,
)
from cloud_ingest.web.visibility import Scope, scope_for
from warmcard.contract import Kind, MealPeriod
from warmcard.timestamps import now_us


def get_service(request: Request) -> ConsoleService:
    service: ConsoleService = request.app.state.service
    return service


ServiceDep = Annotated[ConsoleService, Depends(get_service)]


def get_overview(request: Request) -> Overview:
    overview: Overview = request.app.state.overview
    return overview


OverviewDep = Annotated[Overview, Depends(get_overview)]


def get_engine(service: ServiceDep) -> AlertEngine:
    return service.alerts


EngineDep = Annotated[AlertEngine, Depends(get_engine)]


def get_alert_store(engine: EngineDep) -> AlertStore:
    """The engine's store: thread-safe, each call takes a pooled connection of its own."""
    return engine.store


AlertStoreDep = Annotated[AlertStore, Depends(get_alert_store)]


def get_visits(request: Request) -> VisitsSource | None:
    """The monthly report's "visits made", when the app provides a source (None: left out)."""
    visits: VisitsSource | None = getattr(request.app.state, "visits", None)
    return visits


VisitsDep = Annotated[VisitsSource | None, Depends(get_visits)]


def get_scope(user: CurrentUser, store: AccountStoreDep, service: ServiceDep) -> Scope:
    return scope_for(user, store.db, service.registry)


ScopeDep = Annotated[Scope, Depends(get_scope)]


def get_page(request: Request, session: SessionDep, service: ServiceDep) -> PageContext:
    return PageContext(request, session, render.alert_poll_s(service.settings.alerts.evaluate_s))


PageDep = Annotated[PageContext, Depends(get_page)]


def metrics_token_ok(request: Request, service: ServiceDep) -> bool:
    """True when the request carries `Authorization: Bearer <metrics_token>`."""
    return bearer_ok(request, service.settings.metrics_token)


MetricsTokenOk = Annotated[bool, Depends(metrics_token_ok)]


def get_metrics_registry(request: Request, service: ServiceDep) -> CollectorRegistry:
    # One registry per app (not prometheus_client's global one): several apps in one process
    # (tests, workers) must not collide on metric names.
    registry: CollectorRegistry | None = getattr(request.app.state, "metrics_registry", None)
    if registry is None:
        registry = CollectorRegistry(auto_describe=True)
        registry.register(ConsoleCollector(service))
        request.app.state.metrics_registry = registry
    return registry


MetricsRegistryDep = Annotated[CollectorRegistry, Depends(get_metrics_registry)]


def get_session_alive(
    request: Request, config: AuthConfigDep, session: SessionDep
) -> Callable[[], bool]:
    return sse.session_checker(config, request.cookies.get(SESSION_COOKIE), session.user)


SessionAliveDep = Annotated[Callable[[], bool], Depends(get_session_alive)]


def report_area(scope: Scope, store: AccountStore, area: str) -> str:
    """The area asked for a report, as a path; 404 if it does not exist or is not the user's."""
    try:
        path = areas.parse_path(area)
    except AreaError:
        raise HTTPException(status.HTTP_404_NOT_FOUND, NOT_FOUND) from None
    if path != areas.ROOT:
        with store.db.read() as conn:
            if areas.get_area(conn, path) is None:
                raise HTTPException(status.HTTP_404_NOT_FOUND, NOT_FOUND)
    if not can(scope.user, Action.EXPORT, path):
        raise HTTPException(status.HTTP_404_NOT_FOUND, NOT_FOUND)
    return path


def build_report(
    service: ConsoleService,
    store: AccountStore,
    visits: VisitsSource | None,
    scope: Scope,
    area: str,
    month: str,
) -> MonthlyReport:
    """The month's report of the user's sites in `area`; 400 bad month, 503 no InfluxDB."""
    inside = areas.sites_in(area, scope.view, scope.paths)
    sites = [s for s in map(service.registry.site, inside) if s is not None]
    with store.db.read() as conn:
        found = areas.get_area(conn, area) if area != areas.ROOT else None
    try:
        report = monthly_report(service.query_storage, sites, area, month, visits)
        report.area_name = found.bilingual() if found else ""
        return report
    except ReportError as exc:
        raise HTTPException(400, str(exc)) from None
    except IngestError as exc:
        raise HTTPException(503, f"报表暂不可用 report unavailable: {exc}") from None


def get_report(
    scope: ScopeDep,
    store: AccountStoreDep,
    service: ServiceDep,
    month: MonthQ,
    visits: VisitsDep,
    area: AreaQ = "",
) -> MonthlyReport:
    # A plain def: FastAPI runs it in the thread pool, so the InfluxDB queries never block
    # the event loop, also for the async xlsx handler.
    return build_report(service, store, visits, scope, report_area(scope, store, area), month)


ReportDep = Annotated[MonthlyReport, Depends(get_report)]


def get_meal_sheet(
    scope: ScopeDep, store: AccountStoreDep, service: ServiceDep, month: MonthQ, area: AreaQ = ""
) -> MealSheet:
    """The per-elder meal sheet of the user's sites in `area`; 404, 400 or 503 like a report."""
    path = report_area(scope, store, area)
    inside = areas.sites_in(path, scope.view, scope.paths)
    sites = [s for s in map(service.registry.site, inside) if s is not None]
    paths = {s.site_id: scope.paths.get(s.site_id, "") for s in sites}
    townships = {"/".join(areas.segments(p)[:3]) for p in paths.values()} - {""}
    with store.db.read() as conn:
        # zh-CN names: the sheet is a bilingual export as well as a page.
        named = render.area_names(conn, townships | ({path} - {areas.ROOT}), i18n.ZH)
        rates = subsidy.rates_for(conn, paths)
    people = rc.iter_people_export(service.registry, [s.site_id for s in sites])
    try:
        return build_meal_sheet(
            service.query_storage,
            sites,
            path,
            month,
            site_paths=paths,
            names={p.person_id: p.display_name for p in people},
            rates=rates,
            area_names=named,
        )
    except ReportError as exc:
        raise HTTPException(400, str(exc)) from None
    except IngestError as exc:
        raise HTTPException(503, f"报表暂不可用 report unavailable: {exc}") from None


MealSheetDep = Annotated[MealSheet, Depends(get_meal_sheet)]


def get_audit_log(request: Request) -> AuditLog:
    audit: AuditLog = request.app.state.audit
    return audit


AuditLogDep = Annotated[AuditLog, Depends(get_audit_log)]


def require_prefecture_admin(user: CurrentUser) -> User:
    """The audit log's readers: an admin granted on the root or on a prefecture (top area)."""
    if not any(g.role >= Role.ADMIN and len(areas.segments(g.area)) <= 1 for g in user.grants):
        raise HTTPException(status.HTTP_403_FORBIDDEN, FORBIDDEN)
    return user


def get_audit_query(
    service: ServiceDep,
    user: UserQ = "",
    action: WordQ = "",
    kind: WordQ = "",
    object: ObjectQ = "",
    start: DayQ = "",
    end: DayQ = "",
) -> AuditQuery:
    """The audit log's filters from the query: user, action, kind, object, days (local)."""
    fields = {"user": user, "action": action, "kind": kind, "object": object}
    fields |= {"start": start, "end": end}
    where = audit_filter(service.settings.tz, user, action, kind, object, start, end)
    return AuditQuery(fields, where)


AuditQueryDep = Annotated[AuditQuery, Depends(get_audit_query)]


def site_people(service: ConsoleService, scope: Scope, site_id: str) -> list[dict[str, Any]]:
    """A site's people for a page's search box (enrol loop, 补录): name, pinyin initials, id."""
    rows = rc.search_people(service.registry, scope.view, "", site_id, 1, rc.MAX_PER_PAGE).rows
    return [
        {
            "id": p.person_id,
            "name": p.display_name,
            "initials": initials(p.display_name),
            "cards": p.active_cards,
        }
        for p in rows
        if isinstance(p, rc.PersonRow)
    ]


def record_hand_meal(
    service: ConsoleService,
    store: AccountStore,
    ref: SiteRef,
    user: User,
    person_id: str,
    period: str,
    day: str,
    reason: str,
) -> hand_meals.HandMeal:
    """Record a meal by hand (补录) for a person of `ref`'s site; the form and the JSON share it.

    404 for a person who is not of this site (or not visible), 400/409 as `hand_meals` refuses,
    503 when InfluxDB does not answer (nothing kept). The console's own live figures count it at
    once; the other consoles at their next rebuild from InfluxDB (`live_resync_s`).
    """
    if not person_id:
        raise HTTPException(400, "请先选择长者 choose the elder first")
    site = service.registry.site(ref.site_id)
    scope = scope_for(user, store.db, service.registry)
    person = rc.get_person(service.registry, scope.view, person_id)
    if site is None or person is None or person.site_id != ref.site_id:
        raise HTTPException(status.HTTP_404_NOT_FOUND, NOT_FOUND)
    try:
        chosen = MealPeriod(period) if period else hand_meals.current_period(site, service.clock())
        when = date.fromisoformat(day) if day else hand_meals.today(site, service.clock())
    except ValueError:
        raise HTTPException(
            400, f"餐次或日期无效 invalid meal or date: {period!r} {day!r}"
        ) from None
    try:
        meal = hand_meals.record(
            store.db, service.query_storage, site, person_id, when, chosen, reason,
            user.username, service.clock,
        )  # fmt: skip
    except HandMealRefused as exc:
        raise HTTPException(exc.status, str(exc)) from None
    except IngestError as exc:
        raise HTTPException(503, f"暂时无法保存，请稍后再试 not saved, try again: {exc}") from None
    live = LiveEvent(HAND_DEVICE, meal.seq, meal.ts_us, Kind.MEAL, meal.period, person_id)
    service.live.apply([(site.site_id, live)])
    return meal


def set_county_subsidy(
    user: User, store: AccountStore, county_text: str, category: str, amounts: dict[str, str]
) -> tuple[subsidy.SubsidyRate | None, subsidy.SubsidyRate]:
    """Set a county's rates for county finance or an admin of it: (old, new); the form and the
    JSON share it. A county the user cannot see answers 404, one they only see 403, bad text 400.
    """
    try:
        county = areas.parse_path(county_text)
    except AreaError:
        raise HTTPException(404, NOT_FOUND) from None
    with store.db.write() as conn:
        if areas.get_area(conn, county) is None or not can(user, Action.EXPORT, county):
            raise HTTPException(404, NOT_FOUND)
        if not can(user, Action.SET_SUBSIDY, county):
            raise HTTPException(403, FORBIDDEN)
        old = subsidy.get_rate(conn, county)
        try:
            new = subsidy.set_rate(conn, county, category, amounts, user.username, now_us())
        except ReportError as exc:
            raise HTTPException(400, str(exc)) from None
    return old, new


def subsidy_counties(user: User, store: AccountStore) -> list[tuple[areas.Area, bool]]:
    """The counties the user may see (a grant on or above them), and whether they may set them."""
    with store.db.read() as conn:
        found = {
            a.path: a
            for grant in user.grants
            for a in areas.areas_under(conn, grant.area)
            if subsidy.county_of(a.path) == a.path
        }
    return [(a, can(user, Action.SET_SUBSIDY, a.path)) for _, a in sorted(found.items())]
