"""The monthly report as JSON, and the month and area it is asked for."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query
from pydantic import BaseModel, Field

from cloud_ingest.console.meal_sheet import MealSheet, Totals
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


class MealRowOut(BaseModel):
    person_id: str
    name: str
    site_id: str
    township: str
    date: str
    meals: dict[str, int]
    manual: dict[str, int]  # of `meals`, recorded by hand, per period
    subsidy_category: str | None
    subsidy_amount: str  # yuan, exact decimal text


class TotalOut(BaseModel):
    key: str
    meals: int
    manual: int
    subsidy_amount: str


class MealSheetOut(BaseModel):
    area: str
    month: str
    rows: list[MealRowOut]
    sites: list[TotalOut]
    townships: list[TotalOut]
    total: TotalOut

    @classmethod
    def of(cls, sheet: MealSheet) -> MealSheetOut:
        def total(key: str, t: Totals) -> TotalOut:
            return TotalOut(key=key, meals=t.meals, manual=t.manual, subsidy_amount=str(t.amount))

        rows = []
        for r in sheet.rows:
            rate = sheet.rate_for(r.site_id)
            rows.append(
                MealRowOut(
                    person_id=r.person_id,
                    name=sheet.names.get(r.person_id, ""),
                    site_id=r.site_id,
                    township=sheet.township_of(r.site_id),
                    date=r.day.isoformat(),
                    meals=r.meals,
                    manual=r.manual,
                    subsidy_category=rate.category if rate else None,
                    subsidy_amount=str(sheet.amount(r)),
                )
            )
        return cls(
            area=sheet.area,
            month=sheet.month,
            rows=rows,
            sites=[total(k, t) for k, t in sheet.by_site().items()],
            townships=[total(k, t) for k, t in sheet.by_township().items()],
            total=total("", sheet.total),
        )


class SubsidyIn(BaseModel):
    county: str = Field(max_length=130, examples=["dali/eryuan"])
    category: str = Field(max_length=60, examples=["高龄老人助餐补贴"])
    breakfast: str = Field("0", max_length=12, examples=["2.00"])
    lunch: str = Field("0", max_length=12, examples=["4.00"])
    dinner: str = Field("0", max_length=12, examples=["3.00"])


class SubsidyOut(BaseModel):
    county: str
    category: str
    amounts: dict[str, str]
    updated_by: str
