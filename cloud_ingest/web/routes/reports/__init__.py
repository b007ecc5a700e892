"""Monthly reports: JSON, CSV and Excel in `api`, the /reports page in `pages`.

Mount with ``app.include_router(reports.router)``.
"""

from fastapi import APIRouter

from cloud_ingest.web.routes.reports import api, pages

router = APIRouter()
router.include_router(api.router)
router.include_router(pages.router)
