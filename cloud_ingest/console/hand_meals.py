"""Meals recorded by hand in the console (补录): an elder forgot the card, staff record the meal.

The meal becomes the same InfluxDB point as a staff-card meal at the kiosk (`kind=meal`,
`manual=true`), so reports, the meal sheet and live figures count it and mark it by hand; its
`witness` is `user:<account>` and its device `console:hand` (pipeline.lineprotocol explains why
no kiosk's series and no reconcile can meet it). The console database keeps one row per hand
meal (`hand_meals`): the seq the point carries, who recorded it, when, and the reason, which is
text a person typed and so never leaves this database.

Refused, with a message that says why and what to do:
- a date in the future, older than `MAX_DAYS_BACK` days, or a meal period of today that has not
  begun yet; a period the canteen does not serve; an empty or over-long reason (400);
- a second hand meal for the same elder, local day and period (the `UNIQUE` row), or one when
  InfluxDB already holds a meal for them then, from any kiosk or console (409): one subsidy per
  elder per meal.
The row is written first and removed again if InfluxDB refuses the point, so a failed write
leaves nothing behind and can be tried again.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from cloud_ingest.errors import HandMealRefused
from cloud_ingest.pipeline.influx import Storage, quote_ident, quote_string
from cloud_ingest.pipeline.lineprotocol import MEASUREMENT, encode_hand_meal
from cloud_ingest.registry.store import Site
from warmcard import localtime
from warmcard.contract import MealPeriod
from warmcard.timestamps import format_ts, new_event_id

SCHEMA = """
CREATE TABLE IF NOT EXISTS hand_meals (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,  -- the point's seq on device console:hand
    event_id    TEXT NOT NULL UNIQUE,
    person_id   TEXT NOT NULL,
    site_id     TEXT NOT NULL,
    day         TEXT NOT NULL,                      -- the canteen's local date, 2026-11-30
    period      TEXT NOT NULL,                      -- breakfast, lunch, dinner
    ts_us       INTEGER NOT NULL,                   -- the point's time
    reason      TEXT NOT NULL,
    recorded_by TEXT NOT NULL,
    recorded_us INTEGER NOT NULL,
    UNIQUE (person_id, day, period)
);
"""
MAX_DAYS_BACK = 7  # today and the 7 days before: a forgotten card is noticed within a week
MAX_REASON = 200
# When a canteen's registry row gives no window for any period: the kiosk's defaults.
DEFAULT_STARTS = {
    MealPeriod.BREAKFAST: "07:00",
    MealPeriod.LUNCH: "11:00",
    MealPeriod.DINNER: "17:00",
}
PERIOD_ZH = {MealPeriod.BREAKFAST: "早餐", MealPeriod.LUNCH: "午餐", MealPeriod.DINNER: "晚餐"}


@dataclass(frozen=True)
class HandMeal:
    seq: int
    event_id: str
    person_id: str
    site_id: str
    day: date
    period: MealPeriod
    ts_us: int
    reason: str
    recorded_by: str
    recorded_us: int


def init_schema(conn: sqlite3.Connection) -> None:
    conn.executescript(SCHEMA)


def period_starts(site: Site) -> dict[MealPeriod, str]:
    """The meal periods the canteen serves and when each begins (HH:MM, local)."""
    if not site.meals:
        return dict(DEFAULT_STARTS)
    return {w.period: w.start for w in sorted(site.meals, key=lambda w: w.start)}


def _start_us(site: Site, day: date, period: MealPeriod) -> int:
    hh, mm = (int(x) for x in period_starts(site)[period].split(":"))
    return localtime.to_us(datetime.combine(day, time(hh, mm), tzinfo=localtime.zone(site.tz)))


def today(site: Site, now_us: int) -> date:
    return localtime.to_local(now_us, site.tz).date()


def current_period(site: Site, now_us: int) -> MealPeriod:
    """The period begun last today (the one being served or just served), else the first."""
    starts = period_starts(site)
    day = today(site, now_us)
    begun = [p for p in starts if _start_us(site, day, p) <= now_us]
    return begun[-1] if begun else next(iter(starts))


def earliest_day(site: Site, now_us: int) -> date:
    return today(site, now_us) - timedelta(days=MAX_DAYS_BACK)


def _check(site: Site, day: date, period: MealPeriod, reason: str, now_us: int) -> str:
    starts = period_starts(site)
    zh = PERIOD_ZH[period]
    if period not in starts:
        raise HandMealRefused(f"本院不供应{zh} this canteen serves no {period.value}")
    if day > today(site, now_us):
        raise HandMealRefused(f"日期 {day} 还未到 {day} is in the future")
    if day < earliest_day(site, now_us):
        raise HandMealRefused(
            f"只能补录 {MAX_DAYS_BACK} 天内的用餐 a meal can be recorded by hand up to "
            f"{MAX_DAYS_BACK} days back (from {earliest_day(site, now_us)})"
        )
    if _start_us(site, day, period) > now_us:
        raise HandMealRefused(
            f"{day} 的{zh}还未开始（{starts[period]}） {period.value} on {day} has not begun"
        )
    text = " ".join(reason.split())
    if not text:
        raise HandMealRefused("请填写补录原因 give the reason, e.g. 忘带卡 forgot the card")
    if len(text) > MAX_REASON:
        raise HandMealRefused(
            f"原因最多 {MAX_REASON} 字 the reason is at most {MAX_REASON} characters"
        )
    return text


def meal_stored(storage: Storage, person_id: str, day: date, period: MealPeriod, tz: str) -> bool:
    """True when InfluxDB holds a meal of this person on this local day and period (any site)."""
    start, end = localtime.day_bounds_us(day, tz)
    series = storage.query(
        f'SELECT count("seq") FROM {quote_ident(MEASUREMENT)} '
        f'WHERE "kind" = \'meal\' AND "meal_period" = {quote_string(period.value)} '
        f'AND "person_id" = {quote_string(person_id)} '
        f"AND time >= '{format_ts(start)}' AND time < '{format_ts(end)}'"
    )
    return any(row[1] for s in series for row in s.values)


def find(
    conn: sqlite3.Connection, person_id: str, day: date, period: MealPeriod
) -> HandMeal | None:
    row = conn.execute(
        "SELECT seq, event_id, person_id, site_id, day, period, ts_us, reason, recorded_by, "
        "recorded_us FROM hand_meals WHERE person_id = ? AND day = ? AND period = ?",
        (person_id, day.isoformat(), period.value),
    ).fetchone()
    return None if row is None else _meal(row)


def _meal(row: tuple[object, ...]) -> HandMeal:
    seq, eid, person, site, day, period, ts, reason, by, at = row
    return HandMeal(
        int(str(seq)), str(eid), str(person), str(site), date.fromisoformat(str(day)),
        MealPeriod(str(period)), int(str(ts)), str(reason), str(by), int(str(at)),
    )  # fmt: skip


def _already(person_id: str, day: date, period: MealPeriod, by: str) -> HandMealRefused:
    return HandMealRefused(
        f"{person_id} 在 {day} 的{PERIOD_ZH[period]}已由 {by} 补录，不能重复 already recorded by "
        f"hand ({by}) for {period.value} on {day}: one subsidy per meal",
        409,
    )


def record(
    conn: sqlite3.Connection,
    storage: Storage,
    site: Site,
    person_id: str,
    day: date,
    period: MealPeriod,
    reason: str,
    account: str,
    clock: Callable[[], int],
) -> HandMeal:
    """Record one meal by hand at `site` for `person_id` (already checked to be of that site)."""
    now = clock()
    text = _check(site, day, period, reason, now)
    earlier = find(conn, person_id, day, period)
    if earlier is not None:
        raise _already(person_id, day, period, earlier.recorded_by)
    if meal_stored(storage, person_id, day, period, site.tz):
        raise HandMealRefused(
            f"{person_id} 在 {day} 的{PERIOD_ZH[period]}已有记录（终端刷卡或补录），不能重复 "
            f"a {period.value} on {day} is already recorded for them: one subsidy per meal",
            409,
        )
    event_id = new_event_id(now)
    try:
        with conn:
            cur = conn.execute(
                "INSERT INTO hand_meals (event_id, person_id, site_id, day, period, ts_us, reason,"
                " recorded_by, recorded_us) VALUES (?, ?, ?, ?, ?, 0, ?, ?, ?)",
                (event_id, person_id, site.site_id, day.isoformat(), period.value, text,
                 account, now),
            )  # fmt: skip
            seq = int(cur.lastrowid or 0)
            ts = _start_us(site, day, period) + seq  # unique: seq is unique
            conn.execute("UPDATE hand_meals SET ts_us = ? WHERE seq = ?", (ts, seq))
    except sqlite3.IntegrityError:  # another console recorded it a moment ago
        winner = find(conn, person_id, day, period)
        raise _already(person_id, day, period, winner.recorded_by if winner else "?") from None
    line = encode_hand_meal(site.site_id, period.value, seq, event_id, person_id, account, ts)
    try:
        storage.write([line])
    except BaseException:
        with conn:
            conn.execute("DELETE FROM hand_meals WHERE seq = ?", (seq,))
        raise
    return HandMeal(seq, event_id, person_id, site.site_id, day, period, ts, text, account, now)


def pseudonymise(conn: sqlite3.Connection, person_id: str, token: str) -> int:
    """Erasure: the person's hand meals keep counting under `token`, their reasons emptied."""
    init_schema(conn)  # a console database that never recorded one
    with conn:
        return conn.execute(
            "UPDATE hand_meals SET person_id = ?, reason = '' WHERE person_id = ?",
            (token, person_id),
        ).rowcount


def recent(conn: sqlite3.Connection, site_id: str, since: date, limit: int = 50) -> list[HandMeal]:
    """The site's hand meals from `since` on, newest day first (the 补录 page's list)."""
    rows = conn.execute(
        "SELECT seq, event_id, person_id, site_id, day, period, ts_us, reason, recorded_by, "
        "recorded_us FROM hand_meals WHERE site_id = ? AND day >= ? "
        "ORDER BY day DESC, seq DESC LIMIT ?",
        (site_id, since.isoformat(), limit),
    ).fetchall()
    return [_meal(r) for r in rows]
