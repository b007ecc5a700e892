"""The per-elder monthly meal sheet for the canteen subsidy claim (county finance).

One row per person and local day with meals per period, the hand-recorded ones (``manual``)
marked, the county's subsidy category and amount; then totals per courtyard and per township.
Read from InfluxDB: the month's ``kind = 'meal'`` points of the sites, ``person_id`` and
``manual`` fields, grouped by the ``site`` and ``meal_period`` tags; days are the site's local
days. Subsidy rates are configured per county in the console database (`subsidy`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from cloud_ingest.console.exports import Cell, Sheet
from cloud_ingest.console.reports import PERIODS, parse_month
from cloud_ingest.console.subsidy import SubsidyRate, county_of
from cloud_ingest.pipeline.influx import Storage, quote_ident, quote_string
from cloud_ingest.pipeline.lineprotocol import MEASUREMENT
from cloud_ingest.registry import areas
from cloud_ingest.registry.store import Site
from warmcard import localtime
from warmcard.timestamps import format_ts, now_us

# Words inside the sheet's cells as (zh-CN, English): the exports write both, a page one.
PERIOD_NAMES = {
    "breakfast": ("早餐", "Breakfast"),
    "lunch": ("午餐", "Lunch"),
    "dinner": ("晚餐", "Dinner"),
}
SUBTOTAL = ("小计", "Subtotal")
TOTAL = ("合计", "Total")
NOT_CONFIGURED = ("未配置", "not configured")
Label = Callable[[tuple[str, str]], str]


def both(pair: tuple[str, str]) -> str:
    """'早餐 Breakfast': how the CSV and XLSX write a word."""
    return f"{pair[0]} {pair[1]}"


PERIOD_LABELS = {p: both(pair) for p, pair in PERIOD_NAMES.items()}
MANUAL_MARK = "*"  # after a count: at least one of these meals was recorded by hand


@dataclass
class PersonDay:
    """One elder's meals on one local day at one canteen."""

    person_id: str
    site_id: str
    day: date
    meals: dict[str, int] = field(default_factory=lambda: dict.fromkeys(PERIODS, 0))
    manual: dict[str, int] = field(default_factory=lambda: dict.fromkeys(PERIODS, 0))

    @property
    def total(self) -> int:
        return sum(self.meals.values())

    @property
    def manual_total(self) -> int:
        return sum(self.manual.values())


@dataclass
class Totals:
    """Meals, hand-recorded meals and the subsidy amount of a courtyard or a township."""

    meals: int = 0
    manual: int = 0
    amount: Decimal = Decimal("0.00")


@dataclass
class MealSheet:
    area: str
    month: str
    sites: list[Site]
    site_paths: dict[str, str]
    names: dict[str, str]
    rates: dict[str, SubsidyRate]  # county path → rate
    area_names: dict[str, str]  # township and county paths → name
    rows: list[PersonDay] = field(default_factory=list)
    generated_at_us: int = 0

    def township_of(self, site_id: str) -> str:
        return "/".join(areas.segments(self.site_paths.get(site_id, ""))[:3])

    def rate_for(self, site_id: str) -> SubsidyRate | None:
        return self.rates.get(county_of(self.site_paths.get(site_id, "")))

    def amount(self, row: PersonDay) -> Decimal:
        rate = self.rate_for(row.site_id)
        if rate is None:
            return Decimal("0.00")
        return sum((rate.amounts[p] * row.meals[p] for p in PERIODS), Decimal("0.00"))

    def _totals(self, key: Callable[[str], str]) -> dict[str, Totals]:
        out: dict[str, Totals] = defaultdict(Totals)
        for row in self.rows:
            t = out[key(row.site_id)]
            t.meals += row.total
            t.manual += row.manual_total
            t.amount += self.amount(row)
        return dict(sorted(out.items()))

    def by_site(self) -> dict[str, Totals]:
        return self._totals(lambda s: s)

    def by_township(self) -> dict[str, Totals]:
        return self._totals(self.township_of)

    @property
    def total(self) -> Totals:
        return self._totals(lambda _: "").get("", Totals())


def _sites_filter(site_ids: Sequence[str]) -> str:
    return "(" + " OR ".join(f'"site" = {quote_string(s)}' for s in site_ids) + ")"


def build_meal_sheet(
    storage: Storage,
    sites: Sequence[Site],
    area: str,
    month: str,
    *,
    site_paths: Mapping[str, str],
    names: Mapping[str, str],
    rates: Mapping[str, SubsidyRate],
    area_names: Mapping[str, str],
    clock: Callable[[], int] = now_us,
) -> MealSheet:
    """The month's sheet for these sites (already limited to the caller's area)."""
    year, mon = parse_month(month)
    sheet = MealSheet(
        area=area,
        month=f"{year:04d}-{mon:02d}",
        sites=sorted(sites, key=lambda s: s.site_id),
        site_paths=dict(site_paths),
        names=dict(names),
        rates=dict(rates),
        area_names=dict(area_names),
        generated_at_us=clock(),
    )
    by_tz: dict[str, list[str]] = defaultdict(list)
    for site in sheet.sites:
        by_tz[site.tz].append(site.site_id)
    found: dict[tuple[str, str, date], PersonDay] = {}
    for tz, site_ids in by_tz.items():
        start, end = localtime.month_bounds_us(year, mon, tz)
        for s in storage.query(
            f'SELECT "person_id", "manual" FROM {quote_ident(MEASUREMENT)} '
            f"WHERE \"kind\" = 'meal' AND {_sites_filter(site_ids)} "
            f"AND time >= '{format_ts(start)}' AND time < '{format_ts(end)}' "
            'GROUP BY "site", "meal_period"'
        ):
            period, site_id = s.tags.get("meal_period") or "", s.tags["site"]
            if period not in PERIODS:
                continue
            for ts, person, manual in s.values:
                if not person:
                    continue  # an unknown card is no elder's meal: it cannot be claimed
                day = localtime.to_local(int(ts), tz).date()
                row = found.setdefault(
                    (str(person), site_id, day), PersonDay(str(person), site_id, day)
                )
                row.meals[period] += 1
                if manual is True:
                    row.manual[period] += 1
    sheet.rows = sorted(
        found.values(), key=lambda r: (sheet.township_of(r.site_id), r.site_id, r.person_id, r.day)
    )
    return sheet


# ------------------------------------------------------------------------------- export

HEADER = (
    "乡镇 Township",
    "站点 Site",
    "人员编号 Person ID",
    "姓名 Name",
    "日期 Date",
    *(PERIOD_LABELS[p] for p in PERIODS),
    "合计 Meals",
    "其中补录 Of which by hand",
    "补录餐次 Recorded by hand",
    "补贴类别 Subsidy category",
    "补贴金额(元) Subsidy (CNY)",
)
TOTALS_HEADER = (
    "乡镇 Township",
    "站点 Site",
    "用餐合计 Meals",
    "其中补录 Of which by hand",
    "补贴金额(元) Subsidy (CNY)",
)


def _site_name(sheet: MealSheet, site_id: str) -> str:
    site = next((s for s in sheet.sites if s.site_id == site_id), None)
    return site.name_zh if site else site_id


def _township_name(sheet: MealSheet, path: str) -> str:
    return sheet.area_names.get(path) or path or "—"


def meal_rows(sheet: MealSheet, label: Label = both) -> Iterator[list[Cell]]:
    """One row per elder and day; `label` writes the words in cells (default: both languages)."""
    for r in sheet.rows:
        rate = sheet.rate_for(r.site_id)
        yield [
            _township_name(sheet, sheet.township_of(r.site_id)),
            _site_name(sheet, r.site_id),
            r.person_id,
            sheet.names.get(r.person_id, ""),
            r.day,
            *(f"{r.meals[p]}{MANUAL_MARK}" if r.manual[p] else r.meals[p] for p in PERIODS),
            r.total,
            r.manual_total,
            " ".join(label(PERIOD_NAMES[p]) for p in PERIODS if r.manual[p]),
            rate.category if rate else label(NOT_CONFIGURED),
            sheet.amount(r),
        ]


def totals_rows(sheet: MealSheet, label: Label = both) -> Iterator[list[Cell]]:
    """One row per courtyard, one per township (site column "小计 Subtotal"), then the area."""
    for site_id, t in sheet.by_site().items():
        township = _township_name(sheet, sheet.township_of(site_id))
        yield [township, _site_name(sheet, site_id), t.meals, t.manual, t.amount]
    for path, t in sheet.by_township().items():
        yield [_township_name(sheet, path), label(SUBTOTAL), t.meals, t.manual, t.amount]
    t = sheet.total
    yield [label(TOTAL), "", t.meals, t.manual, t.amount]


def csv_rows(sheet: MealSheet) -> Iterator[list[Cell]]:
    """The per-elder rows, then the totals in the first columns of the same file."""
    yield from meal_rows(sheet)
    pad = [""] * (len(HEADER) - len(TOTALS_HEADER))
    yield ["", "", "", "", "", *([""] * (len(HEADER) - 5))]
    yield [*TOTALS_HEADER, *pad]
    for row in totals_rows(sheet):
        yield [*row, *pad]


def xlsx_sheets(sheet: MealSheet) -> list[Sheet]:
    return [
        Sheet("用餐明细 Meals per elder", HEADER, list(meal_rows(sheet))),
        Sheet("合计 Totals", TOTALS_HEADER, list(totals_rows(sheet))),
    ]


def sheet_filename(sheet: MealSheet, ext: str) -> str:
    """ASCII file name: warmcard-meals-dali-xizhou-2026-11.xlsx."""
    area = "-".join(areas.segments(sheet.area)) or "all"
    return f"warmcard-meals-{area}-{sheet.month}.{ext}"
