"""The audit log for prefecture admins: JSON and CSV in `api`, the /audit page in `pages`.

Mount with ``app.include_router(audit.router)``.
"""

from fastapi import APIRouter

from cloud_ingest.web.routes.audit import api, pages

router = APIRouter()
router.include_router(api.router)
router.include_router(pages.router)
