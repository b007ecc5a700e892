"""One site's day in buckets and its recent days, read from InfluxDB (InfluxQL) for the site page.

Live state only holds today's totals; the curve over a day and the daily figures of the last
weeks come from the tap points. Both are per site and bounded in time, so the queries stay
small: a busy courtyard has a few hundred points a day.
"""

from __future__ import annotations

from collections import Counter
from datetime import date, datetime, timedelta
from typing import Any

from cloud_ingest import i18n
from cloud_ingest.pipeline.influx import Storage, quote_ident, quote_string
from cloud_ingest.pipeline.lineprotocol import MEASUREMENT
from warmcard import localtime
from warmcard.contract import Kind, MealPeriod

BUCKET_S = 600  # 10 minutes
MAX_DAYS = 90
# The days a timeline may be asked for: before 2000 there is no data, and at the ends of the
# calendar (0001-01-01, 9999-12-31) a local day's bounds overflow datetime.
FIRST_DAY = date(2000, 1, 1)
LAST_DAY = date(2099, 12, 31)


def local_today(tz: str, now_us: int) -> date:
    """The calendar date in the site's zone at `now_us`."""
    return localtime.to_local(now_us, tz).date()


def _where_site(site_id: str, start_us: int, end_us: int) -> str:
    return (
        f"WHERE {quote_ident('site')} = {quote_string(site_id)} "
        f"AND time >= {start_us}u AND time < {end_us}u"
    )


def timeline(storage: Storage, site_id: str, tz: str, day: date, now_us: int) -> dict[str, Any]:
    """Check-ins, meals and people present per 10-minute bucket of one local day.

    `present` is the number inside at the end of each bucket, counted like live state (each
    person's latest check-in or check-out); buckets after `now_us` are null so a chart of today
    stops at the current time.
    """
    start_us, end_us = localtime.day_bounds_us(day, tz)
    series = storage.query(
        f'SELECT "seq", "person_id", "device", "kind", "meal_period" '
        f"FROM {quote_ident(MEASUREMENT)} {_where_site(site_id, start_us, end_us)}"
    )
    events: list[tuple[int, str, str | None, str | None]] = []
    for s in series:
        idx = {c: i for i, c in enumerate(s.columns)}
        for row in s.values:
            events.append(
                (int(row[idx["time"]]), row[idx["kind"]], row[idx["person_id"]],
                 row[idx["meal_period"]])
            )  # fmt: skip
    events.sort(key=lambda e: e[0])
    n = max(1, (end_us - start_us) // (BUCKET_S * 1_000_000))  # 23 or 25 on DST days
    arrivals = [0] * n
    meals = [0] * n
    present: list[int | None] = [None] * n
    inside: dict[str, bool] = {}
    by_period: Counter[str] = Counter()
    repeats: list[dict[str, Any]] = []
    arrived: set[str] = set()
    i = 0
    count = 0
    for b in range(n):
        bucket_end = start_us + (b + 1) * BUCKET_S * 1_000_000
        while i < len(events) and events[i][0] < bucket_end:
            ts, kind, person, period = events[i]
            i += 1
            if kind in (Kind.CHECK_IN, Kind.CHECK_OUT):
                now_in = kind == Kind.CHECK_IN
                key = person or ""
                count += int(now_in) - int(inside.get(key, False))
                inside[key] = now_in
                if now_in:
                    arrivals[b] += 1
                    arrived.add(key)
            elif kind == Kind.MEAL:
                meals[b] += 1
                by_period[period or "unknown"] += 1
            elif kind == Kind.MEAL_REPEAT:
                repeats.append(
                    {"at": i18n.format_ts(ts, tz), "person_id": person, "meal_period": period}
                )
        if bucket_end - BUCKET_S * 1_000_000 <= now_us:
            present[b] = count
    return {
        "site_id": site_id,
        "date": day.isoformat(),
        "tz": tz,
        "bucket_s": BUCKET_S,
        "t": [(start_us // 1_000_000) + b * BUCKET_S for b in range(n)],
        "present": present,
        "arrivals": arrivals,
        "meals": meals,
        "arrivals_total": len(arrived),
        "meals_by_period": {p.value: by_period.get(p.value, 0) for p in MealPeriod},
        "meal_repeats": len(repeats),
        "repeats": repeats,
    }


def history(storage: Storage, site_id: str, tz: str, days: int, today: date) -> dict[str, Any]:
    """Daily arrivals (distinct people checking in), meals and meal repeats, oldest day first."""
    days = max(1, min(days, MAX_DAYS))
    first = today - timedelta(days=days - 1)
    start_us, _ = localtime.day_bounds_us(first, tz)
    _, end_us = localtime.day_bounds_us(today, tz)
    where = _where_site(site_id, start_us, end_us)
    tz_clause = f"tz({quote_string(tz)})"  # days start at local midnight
    labels = [(first + timedelta(days=k)).isoformat() for k in range(days)]
    index = {d: k for k, d in enumerate(labels)}
    arrivals = [0] * days
    meals = [0] * days
    repeats = [0] * days

    def day_of(ts_us: int) -> int | None:
        return index.get(localtime.to_local(ts_us, tz).date().isoformat())

    for s in storage.query(
        f'SELECT count(distinct("person_id")) FROM {quote_ident(MEASUREMENT)} {where} '
        f"AND {quote_ident('kind')} = {quote_string(Kind.CHECK_IN.value)} "
        f"GROUP BY time(1d) {tz_clause}"
    ):
        for ts, value in s.values:
            k = day_of(int(ts))
            if k is not None:
                arrivals[k] = int(value or 0)
    for s in storage.query(
        f'SELECT count("seq") FROM {quote_ident(MEASUREMENT)} {where} '
        f"AND ({quote_ident('kind')} = {quote_string(Kind.MEAL.value)} "
        f"OR {quote_ident('kind')} = {quote_string(Kind.MEAL_REPEAT.value)}) "
        f'GROUP BY time(1d), "kind" {tz_clause}'
    ):
        target = meals if s.tags.get("kind") == Kind.MEAL.value else repeats
        for ts, value in s.values:
            k = day_of(int(ts))
            if k is not None:
                target[k] = int(value or 0)
    return {
        "site_id": site_id,
        "tz": tz,
        "days": labels,
        "t": [
            int(datetime.fromisoformat(d).replace(tzinfo=localtime.zone(tz)).timestamp())
            for d in labels
        ],
        "arrivals": arrivals,
        "meals": meals,
        "meal_repeats": repeats,
    }
