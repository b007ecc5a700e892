"""Dependencies shared by the routes."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from cloud_ingest.console.overview import Overview
from cloud_ingest.service import IngestService


def get_service(request: Request) -> IngestService:
    service: IngestService = request.app.state.service
    return service


def get_overview(request: Request) -> Overview:
    overview: Overview = request.app.state.overview
    return overview


Service = Annotated[IngestService, Depends(get_service)]
OverviewDep = Annotated[Overview, Depends(get_overview)]
