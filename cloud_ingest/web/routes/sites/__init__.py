"""One site: its page (`pages`) and its JSON, today, timeline and history (`api`)."""

from fastapi import APIRouter

from cloud_ingest.web.routes.sites import api, pages

router = APIRouter()
router.include_router(pages.router)
router.include_router(api.router)
