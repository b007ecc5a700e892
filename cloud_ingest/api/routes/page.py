"""GET /: the minimal live page, served from the package (no CDN)."""

from __future__ import annotations

from importlib import resources

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

router = APIRouter()


@router.get("/", response_class=HTMLResponse)
def live_page() -> HTMLResponse:
    html = resources.files("cloud_ingest.api").joinpath("static/live.html").read_text("utf-8")
    return HTMLResponse(html, headers={"Cache-Control": "no-cache"})
