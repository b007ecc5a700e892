"""One site: its page (`pages`), its JSON, today, timeline and history (`api`), and the meals
recorded by hand there (`meals`, 补录)."""

from fastapi import APIRouter

from cloud_ingest.web.routes.sites import api, meals, pages

router = APIRouter()
router.include_router(pages.router)
router.include_router(api.router)
router.include_router(meals.router)
