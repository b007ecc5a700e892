"""The registry: people, cards, kiosks and enrol mode (JSON in `api`, pages and forms in `pages`).

Mount with ``app.include_router(registry.router)`` on an app set up with `configure_auth`.
"""

from fastapi import APIRouter

from cloud_ingest.web.routes.registry import api, pages

router = APIRouter()
router.include_router(api.router)
router.include_router(pages.router)
