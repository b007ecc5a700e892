"""Monthly figures for an area, for subsidy claims: read from InfluxDB with InfluxQL.

For a month and the sites of an area:

- meals per canteen (site) per day and meal period: ``count("seq")`` of ``kind = 'meal'``
  (a ``meal_repeat`` is the "already served" warning, not a meal), and of those the ones
  recorded by hand (``"manual" = true``: a staff card at the kiosk, or the console's 补录);
- attendance per site per day: ``count(distinct("person_id"))`` of ``kind = 'check_in'``;
- distinct elders served in the month: the distinct ``person_id`` of meals, over all the
  area's sites (a person eating at two canteens counts once);
- visits made: from the watchers' visit records, through `VisitsSource`.

Days are the sites' local days: ``GROUP BY time(1d) ... tz('<site tz>')`` (InfluxDB 1.6+),
over the month's bounds in that zone. Sites in different zones are queried per zone.
"""

from __future__ import annotations

import re
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Protocol

from cloud_ingest.console.exports import Cell, Sheet
from cloud_ingest.errors import ReportError
from cloud_ingest.pipeline.influx import Storage, quote_ident, quote_string
from cloud_ingest.pipeline.lineprotocol import MEASUREMENT
from cloud_ingest.registry.store import Site
from warmcard import localtime
from warmcard.contract import MealPeriod
from warmcard.timestamps import format_ts, now_us

MONTH_RE = re.compile(r"(\d{4})-(0[1-9]|1[0-2])")
PERIODS = tuple(p.value for p in MealPeriod)


class VisitsSource(Protocol):
    """The watchers' visit records (the alerts package's `visits` table) as the report needs them.

    `month` is ``YYYY-MM``, a calendar month in zone `tz`; the count covers visits to people of
    sites inside `area`. `cloud_ingest.alerts.report_visits.AlertVisits` is the implementation.
    """

    def visits_in(self, area: str, month: str, tz: str) -> int: ...


def parse_month(text: str) -> tuple[int, int]:
    """``2026-11`` → (2026, 11); raises ReportError."""
    m = MONTH_RE.fullmatch(text.strip())
    if m is None:
        raise ReportError(
            f"月份格式应为 YYYY-MM month must be YYYY-MM, e.g. 2026-11 (got {text!r})"
        )
    return int(m.group(1)), int(m.group(2))


def month_days(year: int, month: int) -> list[date]:
    first = date(year, month, 1)
    nxt = date(year + month // 12, month % 12 + 1, 1)
    return [first + timedelta(days=i) for i in range((nxt - first).days)]


@dataclass
class MonthlyReport:
    area: str
    month: str
    sites: list[Site]
    days: list[date]
    meals: dict[tuple[str, date], dict[str, int]] = field(default_factory=dict)
    # Of those meals, the ones recorded by hand (manual=true: staff card at the kiosk, 补录).
    manual: dict[tuple[str, date], int] = field(default_factory=dict)
    attendance: dict[tuple[str, date], int] = field(default_factory=dict)
    elders_served: int = 0
    visits: int | None = None
    generated_at_us: int = 0
    generated_s: float = 0.0
    area_name: str = ""  # '大理市 Dali City' for the exports; empty: the path is shown

    def meals_at(self, site_id: str, day: date) -> dict[str, int]:
        return self.meals.get((site_id, day)) or dict.fromkeys(PERIODS, 0)

    def daily(self) -> Iterator[tuple[date, Site, int, dict[str, int]]]:
        """(day, site, attendance, meals by period) for every day and site, zeros included."""
        for day in self.days:
            for site in self.sites:
                key = (site.site_id, day)
                yield day, site, self.attendance.get(key, 0), self.meals_at(site.site_id, day)

    @property
    def meals_total(self) -> int:
        return sum(sum(m.values()) for m in self.meals.values())

    @property
    def manual_total(self) -> int:
        return sum(self.manual.values())

    def manual_at(self, site_id: str, day: date) -> int:
        return self.manual.get((site_id, day), 0)


def _site_filter(site_ids: Sequence[str]) -> str:
    return "(" + " OR ".join(f'"site" = {quote_string(s)}' for s in site_ids) + ")"


def _local_day(ts_us: int, tz: str) -> date:
    return localtime.to_local(ts_us, tz).date()


def monthly_report(
    storage: Storage,
    sites: Sequence[Site],
    area: str,
    month: str,
    visits: VisitsSource | None = None,
    clock: Callable[[], int] = now_us,
) -> MonthlyReport:
    """The month's figures for these sites (already limited to the area by the caller)."""
    started = time.perf_counter()
    year, mon = parse_month(month)
    report = MonthlyReport(
        area=area,
        month=f"{year:04d}-{mon:02d}",
        sites=sorted(sites, key=lambda s: s.site_id),
        days=month_days(year, mon),
        generated_at_us=clock(),
    )
    by_tz: dict[str, list[str]] = defaultdict(list)
    for site in report.sites:
        by_tz[site.tz].append(site.site_id)
    served: set[str] = set()
    taps = quote_ident(MEASUREMENT)
    for tz, site_ids in by_tz.items():
        start, end = localtime.month_bounds_us(year, mon, tz)
        where = (
            f"{_site_filter(site_ids)} AND time >= '{format_ts(start)}' "
            f"AND time < '{format_ts(end)}'"
        )
        group = f"fill(none) tz({quote_string(tz)})"
        for s in storage.query(
            f'SELECT count("seq") FROM {taps} WHERE "kind" = \'meal\' AND {where} '
            f'GROUP BY time(1d), "site", "meal_period" {group}'
        ):
            period = s.tags.get("meal_period") or ""
            for ts, n in s.values:
                if period in PERIODS and n:
                    key = (s.tags["site"], _local_day(int(ts), tz))
                    report.meals.setdefault(key, dict.fromkeys(PERIODS, 0))[period] += int(n)
        for target, select, condition in (
            (report.manual, 'count("seq")', '"kind" = \'meal\' AND "manual" = true'),
            (report.attendance, 'count(distinct("person_id"))', "\"kind\" = 'check_in'"),
        ):
            for s in storage.query(
                f"SELECT {select} FROM {taps} WHERE {condition} AND {where} "
                f'GROUP BY time(1d), "site" {group}'
            ):
                for ts, n in s.values:
                    if n:
                        target[(s.tags["site"], _local_day(int(ts), tz))] = int(n)
        # The people themselves, not a count per zone: one person may eat in two zones' sites.
        for s in storage.query(
            f'SELECT distinct("person_id") FROM {taps} WHERE "kind" = \'meal\' AND {where}'
        ):
            served.update(str(row[1]) for row in s.values)
    report.elders_served = len(served)
    if visits is not None:
        # One zone per report for the visits: the sites' own when they share one (all of China
        # does), else the default; visits are few and seldom at midnight on the 1st.
        zones = {site.tz for site in report.sites}
        tz = zones.pop() if len(zones) == 1 else localtime.DEFAULT_TZ
        report.visits = visits.visits_in(area, report.month, tz)
    report.generated_s = time.perf_counter() - started
    return report


# ------------------------------------------------------------------------------- export

DAILY_HEADER = (
    "日期 Date",
    "站点编号 Site ID",
    "站点 Site",
    "签到人数 People checked in",
    "早餐 Breakfast",
    "午餐 Lunch",
    "晚餐 Dinner",
    "用餐合计 Meals",
    "其中补录 Of which by hand",
)


def daily_rows(report: MonthlyReport) -> Iterator[list[Cell]]:
    for day, site, people, meals in report.daily():
        yield [
            day,
            site.site_id,
            site.name_zh,
            people,
            *(meals[p] for p in PERIODS),
            sum(meals.values()),
            report.manual_at(site.site_id, day),
        ]


def _generated_local(report: MonthlyReport) -> str:
    tz = report.sites[0].tz if report.sites else None
    return localtime.to_local(report.generated_at_us, tz).strftime("%Y-%m-%d %H:%M")


def summary_rows(report: MonthlyReport) -> list[list[Cell]]:
    """(label, value) rows: the month's figures for the whole area."""
    return [
        ["区域 Area", report.area_name or report.area or "全部 All"],
        ["月份 Month", report.month],
        ["站点数 Sites", len(report.sites)],
        ["用餐合计 Meals served", report.meals_total],
        ["其中补录 Meals recorded by hand", report.manual_total],
        ["用餐长者(去重) Distinct elders served", report.elders_served],
        [
            "探访次数 Visits made",
            report.visits if report.visits is not None else "未提供 not available",
        ],
        # People read this: the sites' local time (the first site's zone; Dali's are all one).
        ["生成时间 Generated", _generated_local(report)],
    ]


def csv_rows(report: MonthlyReport) -> Iterator[list[Cell]]:
    """The daily table, then the area's month figures in the first and last columns."""
    yield from daily_rows(report)
    width = len(DAILY_HEADER)
    for label, value in summary_rows(report):
        yield [label, *([""] * (width - 2)), value]


def xlsx_sheets(report: MonthlyReport) -> list[Sheet]:
    return [
        Sheet("汇总 Summary", ("项目 Item", "数值 Value"), summary_rows(report)),
        Sheet("每日 Daily", DAILY_HEADER, list(daily_rows(report))),
    ]


def report_filename(report: MonthlyReport, ext: str) -> str:
    """ASCII file name: warmcard-report-dali-xizhou-2026-11.xlsx."""
    area = re.sub(r"[^a-z0-9-]+", "-", report.area) or "all"
    return f"warmcard-report-{area}-{report.month}.{ext}"
