"""The console's FastAPI app; its lifespan starts and stops the ConsoleService.

Every route except /login, /healthz and /static needs a console login (docs/console-access.md)
and answers only for the sites in the user's areas:

- GET /                          live overview page (browsers without a session go to /login)
- GET /sites/{site_id}           site page
- GET /api/v1/overview           ?area=&q=&offline=&has_meals=&sort=&page=&page_size=
- GET /api/v1/overview/stream    SSE: `sites` (changed sites only) and `rollup` events
- GET /api/v1/sites/{site_id}    today, kiosks, who is present
- GET /api/v1/sites/{site_id}/timeline?day=   10-minute buckets of a local day
- GET /api/v1/sites/{site_id}/history?days=   daily arrivals and meals
- GET /api/v1/occupancy[?site=ID], GET /api/v1/stream[?site=ID] (SSE `occupancy`)
- GET/POST /login, POST /logout, GET /api/v1/me
- GET /api/v1/reconcile?device=&site=&day=|from=&to=
- GET /api/v1/deadletters[?reason=&limit=], GET /api/v1/deadletters/{id}
- GET /api/v1/alerts..., /alerts, /alerts/visits, /alerts/notify (cloud_ingest/web/routes/alerts/)
- /registry/..., /api/v1/registry/... (people, cards, devices, enrol mode)
- /reports, /api/v1/reports/monthly[.csv|.xlsx]
- /audit, /api/v1/audit[.csv] (prefecture admins; every request on personal data is audited)
- /admin/users[/{username}[/grant|revoke|disable|enable|password]] (admins: user administration)
- GET /healthz (200 ok / 503 degraded; details with the metrics token)
- GET /metrics (Prometheus, bearer metrics_token)
- GET /openapi.json (the API document; logged in)

tests/cloud/web/test_access_matrix.py enumerates these routes and checks each one's access rules.
"""

from __future__ import annotations

from importlib import resources

from fastapi import Depends, FastAPI, Response
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles

from cloud_ingest.alerts.report_visits import AlertVisits
from cloud_ingest.console.audit import AuditLog
from cloud_ingest.console.overview import Overview
from cloud_ingest.registry.placement import SitePlacement
from cloud_ingest.service import ConsoleService
from cloud_ingest.settings import IngestSettings
from cloud_ingest.web import accesslog
from cloud_ingest.web.audit_trail import AuditTrail
from cloud_ingest.web.lifespan import running
from cloud_ingest.web.middleware import BodyLimit, PrivateResponses
from cloud_ingest.web.routes import (
    alerts,
    audit,
    care,
    deadletters,
    health,
    metrics,
    occupancy,
    overview,
    reconcile,
    registry,
    reports,
    sites,
    users,
)
from cloud_ingest.web.security import (
    AuthConfig,
    auth_router,
    configure_auth,
    current_user,
    install_login_redirect,
    require_whole_hierarchy_admin,
)


def create_app(
    settings: IngestSettings | None = None,
    *,
    service: ConsoleService | None = None,
    auth: AuthConfig | None = None,
) -> FastAPI:
    """An app owning `service` (built from `settings` if not given).

    `auth` replaces the login configuration built from the settings (tests pass a cheaper
    password hasher or a clock).
    """
    if service is None:
        service = ConsoleService(settings or IngestSettings())
    svc = service
    if auth is None:
        auth = AuthConfig(
            console=svc.settings.store("console"), cookie_secure=svc.settings.cookie_secure
        )
    # One engine for the console store in this app: accounts, areas and the audit log.
    placement = SitePlacement(auth.db, svc.registry)
    # The hierarchy, not a query per request, says where a site is (see placement.py).
    auth.site_locator = placement.site_locator
    # Beside the accounts, in the store every console process and command shares.
    audit_log = AuditLog(auth.db)

    def stop() -> None:
        svc.stop()
        auth.db.close()

    # The API document describes every route: behind the login like the rest (no /docs, /redoc:
    # they would load scripts from a CDN, which the console's CSP and intranets refuse).
    app = FastAPI(
        title="Warmcard ingest",
        version="1",
        lifespan=running(svc.start, stop),
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
    )
    app.state.service = svc
    app.state.audit = audit_log
    app.state.overview = Overview(svc.live, placement)
    # The monthly report's "visits made": the visits recorded through the alerts pages.
    app.state.visits = AlertVisits(svc.alerts.store)
    configure_auth(app, auth)
    accesslog.install()
    install_login_redirect(app)
    app.include_router(auth_router)
    app.include_router(overview.router)
    app.include_router(sites.router)
    app.include_router(occupancy.router)
    app.include_router(health.router)
    # Fleet-wide operator views: they name every device, so only an admin of the whole hierarchy.
    operator_only = [Depends(require_whole_hierarchy_admin)]
    app.include_router(reconcile.router, dependencies=operator_only)
    app.include_router(deadletters.router, dependencies=operator_only)
    app.include_router(alerts.router)
    app.include_router(care.router)
    app.include_router(registry.router)
    app.include_router(reports.router)
    app.include_router(audit.router)
    app.include_router(users.router)
    app.include_router(metrics.router)
    app.add_api_route(
        "/openapi.json",
        lambda: JSONResponse(app.openapi()),
        dependencies=[Depends(current_user)],
        include_in_schema=False,
    )
    app.add_middleware(AuditTrail, log=audit_log)
    app.add_middleware(PrivateResponses)
    app.add_middleware(BodyLimit)
    static = resources.files("cloud_ingest.web").joinpath("static")
    app.mount("/static", StaticFiles(directory=str(static)), name="static")
    # Browsers ask for it on every page, the login page included; no icon, no 404 in the logs.
    app.add_api_route("/favicon.ico", lambda: Response(status_code=204), include_in_schema=False)
    return app
