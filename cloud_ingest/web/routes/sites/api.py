"""One site's JSON: GET /api/v1/sites/{site_id} (today, kiosks, who is present), /timeline?day=
(10-minute buckets of a day) and /history?days= (daily figures).

Every route takes the site through `SiteAccess`: a site outside the user's areas
answers 404, like one that does not exist. Display names are shown here (never on the
overview), and only of people whose home site the user may also view.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query
from fastapi.concurrency import run_in_threadpool

from cloud_ingest import i18n
from cloud_ingest.console import site_history
from cloud_ingest.console.overview import Overview
from cloud_ingest.console.roles import User
from cloud_ingest.errors import IngestError
from cloud_ingest.service import ConsoleService
from cloud_ingest.web.deps import OverviewDep, ServiceDep
from cloud_ingest.web.security import NOT_FOUND, CurrentUser, SiteAccess

router = APIRouter()


def _present(
    service: ConsoleService, overview: Overview, user: User, site_id: str, tz: str
) -> list[dict[str, Any]]:
    people = service.live.present_people(site_id)
    homes = service.registry.people_homes([p for p, _ in people])
    visible = overview.visible(user)
    out = []
    for person_id, since_us in people:
        home = homes.get(person_id)
        shown = home is not None and home[1] in visible
        out.append(
            {
                "person_id": person_id,
                "display_name": home[0] if shown and home else None,
                "home_site": home[1] if shown and home else None,
                "since": i18n.format_ts(since_us, tz),
            }
        )
    return out


@router.get("/api/v1/sites/{site_id}")
def get_site(
    ref: SiteAccess, user: CurrentUser, overview: OverviewDep, service: ServiceDep
) -> dict[str, Any]:
    """Today's numbers, the kiosks (last heartbeat, outbox, reader) and who is present now."""
    row = overview.site_row(user, ref.site_id)
    if row is None:
        raise HTTPException(404, NOT_FOUND)
    return {
        **row,
        "area_path": ref.area_path,
        "present_people": _present(service, overview, user, ref.site_id, row["tz"]),
    }


def _day(text: str | None, tz: str, now_us: int) -> date:
    if not text:
        return site_history.local_today(tz, now_us)
    try:
        day = date.fromisoformat(text)
    except ValueError:
        day = None
    if day is None or not site_history.FIRST_DAY <= day <= site_history.LAST_DAY:
        raise HTTPException(422, i18n.both("bad_day"))
    return day


async def _query(fn: Callable[..., dict[str, Any]], *args: object) -> dict[str, Any]:
    try:
        result = await run_in_threadpool(fn, *args)
    except IngestError as exc:
        raise HTTPException(503, f"InfluxDB 暂不可用 unavailable: {exc}") from None
    return result


@router.get("/api/v1/sites/{site_id}/timeline")
async def get_timeline(
    ref: SiteAccess, service: ServiceDep, day: str | None = None
) -> dict[str, Any]:
    """Arrivals, meals and people present per 10 minutes of a local day (default today)."""
    site = service.registry.site(ref.site_id)
    if site is None:
        raise HTTPException(404, NOT_FOUND)
    now = service.clock()
    the_day = _day(day, site.tz, now)
    return await _query(
        site_history.timeline, service.query_storage, ref.site_id, site.tz, the_day, now
    )


@router.get("/api/v1/sites/{site_id}/history")
async def get_history(
    ref: SiteAccess,
    service: ServiceDep,
    days: Annotated[int, Query(ge=1, le=site_history.MAX_DAYS)] = 30,
) -> dict[str, Any]:
    """Daily arrivals, meals and repeat meals of the last `days` local days, today included."""
    site = service.registry.site(ref.site_id)
    if site is None:
        raise HTTPException(404, NOT_FOUND)
    today = site_history.local_today(site.tz, service.clock())
    return await _query(
        site_history.history, service.query_storage, ref.site_id, site.tz, days, today
    )
