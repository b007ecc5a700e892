"""The registry: people, cards, kiosks and enrol mode (JSON in `api`, pages and forms in
`pages`, adding people from a sheet in `imports`).

Mount with ``app.include_router(registry.router)`` on an app set up with `configure_auth`.
"""

from fastapi import APIRouter

from cloud_ingest.web.routes.registry import api, imports, pages

router = APIRouter()
router.include_router(api.router)
# Before pages: /registry/people/import is not a person id.
router.include_router(imports.router)
router.include_router(pages.router)
