"""Care (关爱): a person's care flags and contact (forms on the person page), and the closure
calendar (/alerts/closures). Mount with ``app.include_router(care.router)``."""

from fastapi import APIRouter

from cloud_ingest.web.routes.care import api, pages

router = APIRouter()
router.include_router(api.router)
router.include_router(pages.router)
