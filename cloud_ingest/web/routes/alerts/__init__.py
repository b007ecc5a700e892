"""Alerts and visits, limited to the user's areas: JSON and the forms' posts in `api`, the
/alerts pages in `pages`.

Mount with ``app.include_router(alerts.router)`` on an app that has `configure_auth` and a
service (its ``alerts`` is the AlertEngine).
"""

from fastapi import APIRouter

from cloud_ingest.web.routes.alerts import api, notify, pages

router = APIRouter()
router.include_router(api.router)
router.include_router(pages.router)
router.include_router(notify.router)
