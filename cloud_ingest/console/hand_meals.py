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

The card's tap is the stronger record. When a kiosk's meal for the same elder, day and period
reaches InfluxDB (the elder found the card and tapped after all, or a kiosk that was offline
when the meal was recorded by hand uploads its tap later), `replace_by_kiosk` deletes the hand
meal's point and marks its row `replaced_by` that tap, so the meal counts once in every report;
the console's live figures never count the pair twice (`pipeline.live`). The point goes first
and the mark after, so a console that dies between the two finds the row again next time.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import Connection, text
from sqlalchemy.exc import IntegrityError

from cloud_ingest.db import Database
from cloud_ingest.errors import HandMealRefused
from cloud_ingest.pipeline.influx import Storage, quote_ident, quote_string
from cloud_ingest.pipeline.lineprotocol import HAND_DEVICE, MEASUREMENT, encode_hand_meal
from cloud_ingest.registry.store import IN_CHUNK, Site, statement
from warmcard import localtime
from warmcard.contract import MealPeriod
from warmcard.timestamps import format_ts, new_event_id

log = logging.getLogger(__name__)

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
    replaced_by: str | None = None  # the kiosk's tap (device#seq) that replaced this one
    replaced_us: int | None = None


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


COLUMNS = (
    "seq, event_id, person_id, site_id, day, period, ts_us, reason, recorded_by, recorded_us, "
    "replaced_by, replaced_us"
)


def find(conn: Connection, person_id: str, day: date, period: MealPeriod) -> HandMeal | None:
    row = conn.execute(
        text(
            f"SELECT {COLUMNS} FROM hand_meals "
            "WHERE person_id = :person AND day = :day AND period = :period"
        ),
        {"person": person_id, "day": day.isoformat(), "period": period.value},
    ).first()
    return None if row is None else _meal(row)


def _meal(row: Sequence[Any]) -> HandMeal:
    seq, eid, person, site, day, period, ts, reason, by, at, replaced, replaced_at = row
    return HandMeal(
        int(str(seq)), str(eid), str(person), str(site), date.fromisoformat(str(day)),
        MealPeriod(str(period)), int(str(ts)), str(reason), str(by), int(str(at)),
        None if replaced is None else str(replaced),
        None if replaced_at is None else int(str(replaced_at)),
    )  # fmt: skip


def _already(person_id: str, day: date, period: MealPeriod, by: str) -> HandMealRefused:
    return HandMealRefused(
        f"{person_id} 在 {day} 的{PERIOD_ZH[period]}已由 {by} 补录，不能重复 already recorded by "
        f"hand ({by}) for {period.value} on {day}: one subsidy per meal",
        409,
    )


def record(
    db: Database,
    storage: Storage,
    site: Site,
    person_id: str,
    day: date,
    period: MealPeriod,
    reason: str,
    account: str,
    clock: Callable[[], int],
) -> HandMeal:
    """Record one meal by hand at `site` for `person_id` (already checked to be of that site);
    `db` is the console store."""
    now = clock()
    cleaned = _check(site, day, period, reason, now)
    with db.read() as conn:
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
        with db.write() as conn:
            seq = int(
                conn.execute(
                    text(
                        "INSERT INTO hand_meals (event_id, person_id, site_id, day, period, ts_us,"
                        " reason, recorded_by, recorded_us) VALUES (:event_id, :person, :site,"
                        " :day, :period, 0, :reason, :by, :now) RETURNING seq"
                    ),
                    {"event_id": event_id, "person": person_id, "site": site.site_id,
                     "day": day.isoformat(), "period": period.value, "reason": cleaned,
                     "by": account, "now": now},
                ).scalar_one()
            )  # fmt: skip
            ts = _start_us(site, day, period) + seq  # unique: seq is unique
            conn.execute(
                text("UPDATE hand_meals SET ts_us = :ts WHERE seq = :seq"), {"ts": ts, "seq": seq}
            )
    except IntegrityError:  # another console recorded it a moment ago
        with db.read() as conn:
            winner = find(conn, person_id, day, period)
        raise _already(person_id, day, period, winner.recorded_by if winner else "?") from None
    line = encode_hand_meal(site.site_id, period.value, seq, event_id, person_id, account, ts)
    try:
        storage.write([line])
    except BaseException:
        with db.write() as conn:
            conn.execute(text("DELETE FROM hand_meals WHERE seq = :seq"), {"seq": seq})
        raise
    return HandMeal(seq, event_id, person_id, site.site_id, day, period, ts, cleaned, account, now)


def pseudonymise(conn: Connection, person_id: str, token: str) -> int:
    """Erasure, in the caller's write transaction on the console store: the person's hand meals
    keep counting under `token`, their reasons emptied; returns how many."""
    return conn.execute(
        text("UPDATE hand_meals SET person_id = :token, reason = '' WHERE person_id = :person"),
        {"token": token, "person": person_id},
    ).rowcount


def recent(conn: Connection, site_id: str, since: date, limit: int = 50) -> list[HandMeal]:
    """The site's hand meals from `since` on, newest day first (the 补录 page's list)."""
    rows = conn.execute(
        text(
            f"SELECT {COLUMNS} FROM hand_meals WHERE site_id = :site AND day >= :since "
            "ORDER BY day DESC, seq DESC LIMIT :limit"
        ),
        {"site": site_id, "since": since.isoformat(), "limit": limit},
    ).all()
    return [_meal(r) for r in rows]


def _kiosk_meals(
    storage: Storage, persons: Collection[str], since_us: int
) -> list[tuple[str, int, str, MealPeriod, int]]:
    """Meals of `persons` from `since_us` on that a kiosk recorded (not by hand):
    (device, seq, person, period, time)."""
    who = " OR ".join(f'"person_id" = {quote_string(p)}' for p in sorted(persons))
    series = storage.query(
        f'SELECT "seq", "person_id", "meal_period" FROM {quote_ident(MEASUREMENT)} '
        f'WHERE "kind" = \'meal\' AND "device" != {quote_string(HAND_DEVICE)} AND ({who}) '
        f"AND time >= '{format_ts(since_us)}' GROUP BY \"device\""
    )
    found = []
    for s in series:
        for row in s.rows():
            period = str(row["meal_period"] or s.tags.get("meal_period"))
            if period in MealPeriod._value2member_map_:
                found.append(
                    (s.tags.get("device", ""), int(row["seq"]), str(row["person_id"]),
                     MealPeriod(period), int(row["time"]))
                )  # fmt: skip
    return found


def replace_by_kiosk(
    db: Database,
    storage: Storage,
    tz_of: Callable[[str], str],
    now_us: int,
    persons: Collection[str] | None = None,
) -> list[HandMeal]:
    """Replace each hand meal of the last `MAX_DAYS_BACK` days (of `persons`, or everyone's)
    that a kiosk's meal of the same elder, local day and period now matches: its point deleted
    from InfluxDB, its row marked. `tz_of` gives a site's zone. Returns the meals replaced."""
    since = (localtime.to_local(now_us).date() - timedelta(days=MAX_DAYS_BACK + 1)).isoformat()
    query = f"SELECT {COLUMNS} FROM hand_meals WHERE replaced_by IS NULL AND day >= :since"
    args: dict[str, Any] = {"since": since}
    if persons is not None:
        if not persons:
            return []
        query += " AND person_id IN :persons"
        args["persons"] = sorted(persons)[:IN_CHUNK]  # the rest at the periodic sweep
    with db.read() as conn:
        open_meals = [_meal(r) for r in conn.execute(statement(query, args), args).all()]
    if not open_meals:
        return []
    first = min(localtime.day_bounds_us(m.day, tz_of(m.site_id))[0] for m in open_meals)
    taps = _kiosk_meals(storage, {m.person_id for m in open_meals}, first)
    replaced = []
    for meal in open_meals:
        tz = tz_of(meal.site_id)
        match = next(
            (
                t
                for t in taps
                if t[2] == meal.person_id
                and t[3] is meal.period
                and localtime.to_local(t[4], tz).date() == meal.day
            ),
            None,
        )
        if match is None:
            continue
        at = f"'{format_ts(meal.ts_us)}'"
        storage.query(
            f'DELETE FROM {quote_ident(MEASUREMENT)} WHERE "device" = '
            f"{quote_string(HAND_DEVICE)} AND time >= {at} AND time <= {at}"
        )
        by = f"{match[0]}#{match[1]}"
        with db.write() as conn:
            done = conn.execute(
                text(
                    "UPDATE hand_meals SET replaced_by = :by, replaced_us = :now "
                    "WHERE seq = :seq AND replaced_by IS NULL"
                ),
                {"by": by, "now": now_us, "seq": meal.seq},
            ).rowcount
        if done:
            log.info(
                "hand meal %d (%s %s %s) replaced by the kiosk's tap %s",
                meal.seq, meal.person_id, meal.day, meal.period.value, by,
            )  # fmt: skip
            replaced.append(meal)
    return replaced
