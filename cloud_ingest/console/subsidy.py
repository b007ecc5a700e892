"""Canteen subsidy rates per county: a category name and an amount in yuan per meal period.

Stored in the console database beside the areas (table ``subsidy_rates``, one row per county),
set by an admin of that county and read by the meal sheet (`meal_sheet`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from sqlalchemy import Connection, text

from cloud_ingest.console.reports import PERIODS
from cloud_ingest.errors import ReportError
from cloud_ingest.registry import areas

MAX_AMOUNT = Decimal("1000")
MAX_CATEGORY = 60


@dataclass(frozen=True)
class SubsidyRate:
    county: str
    category: str
    amounts: dict[str, Decimal]  # meal period → yuan per meal
    updated_by: str = ""
    updated_us: int = 0


def county_of(path: str) -> str:
    """The county part of an area path ('dali/eryuan/xishan/xs-01' → 'dali/eryuan'), or ''."""
    parts = areas.segments(path)
    return "/".join(parts[:2]) if len(parts) >= 2 else ""


def parse_amount(text: str) -> Decimal:
    """'3', '3.5' or '3.50' → Decimal('3.50'); raise ReportError for anything else."""
    try:
        value = Decimal(text.strip())
    except InvalidOperation:
        raise ReportError(f"金额无效 invalid amount {text!r}: write yuan, e.g. 3.50") from None
    if (
        not value.is_finite()
        or value < 0
        or value > MAX_AMOUNT
        or value != value.quantize(Decimal("0.01"))
    ):
        raise ReportError(f"金额无效 invalid amount {text!r}: 0 to 1000 yuan, at most 2 decimals")
    return value.quantize(Decimal("0.01"))


def get_rate(conn: Connection, county: str) -> SubsidyRate | None:
    row = conn.execute(
        text(
            "SELECT county, category, breakfast, lunch, dinner, updated_by, updated_us "
            "FROM subsidy_rates WHERE county = :county"
        ),
        {"county": county},
    ).first()
    if row is None:
        return None
    amounts = {p: Decimal(v) for p, v in zip(PERIODS, row[2:5], strict=True)}
    return SubsidyRate(row[0], row[1], amounts, row[5], int(row[6]))


def rates_for(conn: Connection, paths: Mapping[str, str]) -> dict[str, SubsidyRate]:
    """The rates of every county the given site paths lie in."""
    out: dict[str, SubsidyRate] = {}
    for county in {county_of(p) for p in paths.values()} - {""}:
        rate = get_rate(conn, county)
        if rate is not None:
            out[county] = rate
    return out


def set_rate(
    conn: Connection,
    county: str,
    category: str,
    amounts: Mapping[str, str],
    by: str,
    now_us: int,
) -> SubsidyRate:
    """Set a county's category and amounts (text in yuan), in the caller's write transaction
    (`Database.write()`); raise ReportError if invalid."""
    if len(areas.segments(county)) != 2:  # prefecture/county
        raise ReportError(f"补贴按县设置 subsidies are set per county, not {county!r}")
    category = category.strip()
    if not category or len(category) > MAX_CATEGORY:
        raise ReportError(f"补贴类别应为 1 到 {MAX_CATEGORY} 个字 category: 1 to {MAX_CATEGORY}")
    parsed = {p: parse_amount(amounts.get(p, "0")) for p in PERIODS}
    conn.execute(
        text(
            "INSERT INTO subsidy_rates (county, category, breakfast, lunch, dinner, updated_by,"
            " updated_us) VALUES (:county, :category, :breakfast, :lunch, :dinner, :by, :now)"
            " ON CONFLICT (county) DO UPDATE SET category = excluded.category,"
            " breakfast = excluded.breakfast, lunch = excluded.lunch, dinner = excluded.dinner,"
            " updated_by = excluded.updated_by, updated_us = excluded.updated_us"
        ),
        {"county": county, "category": category, "by": by, "now": now_us}
        | {p: str(parsed[p]) for p in PERIODS},
    )
    return SubsidyRate(county, category, parsed, by, now_us)
