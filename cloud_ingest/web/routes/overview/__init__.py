"""The live overview: the page (`pages`), one page of sites with roll-ups and its delta stream
(`api`)."""

from fastapi import APIRouter

from cloud_ingest.web.routes.overview import api, pages

router = APIRouter()
router.include_router(pages.router)
router.include_router(api.router)
