"""GET /api/v1/occupancy: per site the user may view, today's present, arrivals, meals, devices."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException

from cloud_ingest.console.accounts import User
from cloud_ingest.console.overview import Overview
from cloud_ingest.service import IngestService
from cloud_ingest.web.deps import OverviewDep, Service
from cloud_ingest.web.security import NOT_FOUND, CurrentUser

router = APIRouter()


def occupancy_document(
    service: IngestService, overview: Overview, user: User, site: str | None = None
) -> dict[str, Any]:
    """The live snapshot cut to the user's sites (and to `site` when given)."""
    visible = overview.visible(user)
    wanted = {site} & visible if site is not None else visible
    doc = service.live.snapshot()
    doc["sites"] = [s for s in doc["sites"] if s["site_id"] in wanted]
    return doc


@router.get("/api/v1/occupancy")
def get_occupancy(
    service: Service, overview: OverviewDep, user: CurrentUser, site: str | None = None
) -> dict[str, Any]:
    doc = occupancy_document(service, overview, user, site)
    if site is not None and not doc["sites"]:
        # Unknown and not-yours look the same, so site ids elsewhere cannot be probed.
        raise HTTPException(404, NOT_FOUND)
    return doc
