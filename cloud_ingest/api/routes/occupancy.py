"""GET /api/v1/occupancy: per site, today's present, arrivals, meals, repeats and devices."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException

from cloud_ingest.api.deps import Service
from cloud_ingest.service import IngestService

router = APIRouter()


def occupancy_document(service: IngestService, site: str | None = None) -> dict[str, Any]:
    doc = service.live.snapshot()
    if site is not None:
        doc["sites"] = [s for s in doc["sites"] if s["site_id"] == site]
    return doc


@router.get("/api/v1/occupancy")
def get_occupancy(service: Service, site: str | None = None) -> dict[str, Any]:
    doc = occupancy_document(service, site)
    if site is not None and not doc["sites"]:
        raise HTTPException(404, f"未知站点 Unknown site: {site}")
    return doc
