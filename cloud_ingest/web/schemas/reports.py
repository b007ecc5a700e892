"""The monthly report as JSON, and the month and area it is asked for."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query
from pydantic import BaseModel

from cloud_ingest.console.reports import MonthlyReport

MonthQ = Annotated[str, Query(pattern=r"^\d{4}-(0[1-9]|1[0-2])$", examples=["2026-11"])]
AreaQ = Annotated[str, Query(max_length=300, examples=["dali/eryuan/xishan"])]


class SiteOut(BaseModel):
    site_id: str
    name_zh: str
    tz: str


class DayOut(BaseModel):
    date: str
    site_id: str
    attendance: int
    meals: dict[str, int]
    meals_total: int
    manual: int  # of meals_total, recorded by hand


class ReportOut(BaseModel):
    area: str
    month: str
    sites: list[SiteOut]
    days: list[DayOut]
    meals_total: int
    manual_total: int
    elders_served: int
    visits: int | None
    generated_s: float

    @classmethod
    def of(cls, report: MonthlyReport) -> ReportOut:
        return cls(
            area=report.area,
            month=report.month,
            sites=[SiteOut(site_id=s.site_id, name_zh=s.name_zh, tz=s.tz) for s in report.sites],
            days=[
                DayOut(
                    date=day.isoformat(),
                    site_id=site.site_id,
                    attendance=people,
                    meals=meals,
                    meals_total=sum(meals.values()),
                    manual=report.manual_at(site.site_id, day),
                )
                for day, site, people, meals in report.daily()
            ],
            meals_total=report.meals_total,
            manual_total=report.manual_total,
            elders_served=report.elders_served,
            visits=report.visits,
            generated_s=round(report.generated_s, 4),
        )
