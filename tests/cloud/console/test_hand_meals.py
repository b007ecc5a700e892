# mypy: allow-untyped-defs
"""补录's rules on real InfluxDB and the console store (SQLite and PostgreSQL, `store_at`), with
the clock passed in: the
current period, what is refused (future, too old, not begun, not served, no reason, twice, a
kiosk's meal), and a point InfluxDB refuses leaves no row behind."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime, time
from typing import Any

import pytest
from sqlalchemy import text

from cloud_ingest.console import db as console_db
from cloud_ingest.console import hand_meals
from cloud_ingest.db import Database
from cloud_ingest.errors import HandMealRefused, IngestError
from cloud_ingest.pipeline.influx import InfluxV1
from cloud_ingest.pipeline.lineprotocol import FieldValue, encode_point
from cloud_ingest.pipeline.settings import InfluxSettings
from cloud_ingest.registry.store import Site, parse_window
from tests.support.databases import StoreAt
from warmcard import localtime
from warmcard.contract import MealPeriod

TZ = "Asia/Shanghai"
TODAY = date(2026, 11, 30)
LUNCH, DINNER = MealPeriod.LUNCH, MealPeriod.DINNER


def at(day: date, hh: int, mm: int = 0) -> int:
    return localtime.to_us(datetime.combine(day, time(hh, mm), tzinfo=localtime.zone(TZ)))


NOW = at(TODAY, 15)  # 15:00 local: lunch begun, dinner (17:00) not yet
SITE = Site("s1", "西山小院", "Xishan", TZ, 40, "07:00", "18:00", ())  # the kiosk's windows
LUNCH_ONLY = Site(
    "s2", "海东小院", "Haidong", TZ, 30, "07:30", "17:30", (parse_window("lunch", "11:30-13:00"),)
)


@pytest.fixture
def storage(influxd, influx_db) -> Iterator[InfluxV1]:
    s = InfluxV1(InfluxSettings(url=influxd.url, database=influx_db))
    yield s
    s.close()


@pytest.fixture
def db(store_at: StoreAt) -> Iterator[Database]:
    d = console_db.open_store(store_at("console"))
    yield d
    d.close()


def recent(db: Database, since: date) -> list[hand_meals.HandMeal]:
    with db.read() as conn:
        return hand_meals.recent(conn, "s1", since)


def record(db, storage, person="P1", day=TODAY, period=LUNCH, reason="忘带卡", site=SITE):
    return hand_meals.record(db, storage, site, person, day, period, reason, "li", lambda: NOW)


def test_periods_and_what_is_refused(db, storage) -> None:
    assert hand_meals.current_period(SITE, NOW) is LUNCH
    assert hand_meals.current_period(SITE, at(TODAY, 6)) is MealPeriod.BREAKFAST  # none begun
    assert hand_meals.current_period(SITE, at(TODAY, 20)) is DINNER
    assert list(hand_meals.period_starts(LUNCH_ONLY)) == [LUNCH]

    meal = record(db, storage)
    assert meal.ts_us == at(TODAY, 11) + meal.seq and meal.reason == "忘带卡"
    (series,) = storage.query('SELECT * FROM "taps"')
    row = dict(zip(series.columns, series.values[0], strict=True))
    assert row["device"] == "console:hand" and row["witness"] == "user:li"
    assert row["manual"] is True and row["seq"] == meal.seq and row["time"] == meal.ts_us

    refused: list[tuple[dict[str, Any], int, str]] = [
        ({}, 409, "不能重复"),  # the same meal again
        ({"day": date(2026, 12, 1)}, 400, "还未到"),
        ({"day": date(2026, 11, 22)}, 400, "7 天内"),  # 8 days back
        ({"person": "P2", "period": DINNER}, 400, "还未开始"),
        ({"person": "P2", "reason": "  "}, 400, "原因"),
        ({"person": "P2", "reason": "x" * 201}, 400, "200"),
        ({"person": "P2", "period": DINNER, "site": LUNCH_ONLY}, 400, "不供应晚餐"),
    ]
    for kw, status, words in refused:
        with pytest.raises(HandMealRefused, match=words) as err:
            record(db, storage, **kw)
        assert err.value.status == status, kw
    assert record(db, storage, day=date(2026, 11, 23)).day == date(2026, 11, 23)  # 7 back

    # A meal a kiosk stored (P3's lunch yesterday): no 补录 on top of it.
    kiosk = {"device": "k1", "kind": "meal", "meal_period": "lunch", "site": "s1"}
    fields: dict[str, FieldValue | None] = {"seq": 7, "event_id": "e", "person_id": "P3"}
    storage.write([encode_point("taps", kiosk, fields, at(date(2026, 11, 29), 12))])
    with pytest.raises(HandMealRefused, match="已有记录") as err:
        record(db, storage, person="P3", day=date(2026, 11, 29))
    assert err.value.status == 409
    assert record(db, storage, person="P3", day=date(2026, 11, 29), period=DINNER)
    assert [m.person_id for m in recent(db, date(2026, 11, 23))] == [
        "P1",
        "P3",
        "P1",
    ]


def test_a_point_influxdb_refuses_leaves_nothing(db, storage) -> None:
    # `manual` stored as text in this shard first: InfluxDB refuses the boolean (type conflict).
    tags = {"device": "k1", "kind": "meal", "meal_period": "lunch", "site": "s1"}
    storage.write([encode_point("taps", tags, {"seq": 1, "manual": "yes"}, at(TODAY, 12))])
    with pytest.raises(IngestError):
        record(db, storage)
    with db.read() as conn:
        assert conn.execute(text("SELECT count(*) FROM hand_meals")).scalar_one() == 0
        assert hand_meals.find(conn, "P1", TODAY, LUNCH) is None


def test_erasure_keeps_the_meal_under_the_token_and_empties_the_reason(db, storage) -> None:
    first = record(db, storage)
    record(db, storage, person="P2")
    with db.write() as conn:
        assert hand_meals.pseudonymise(conn, "P1", "erased-00") == 1
    with db.read() as conn:
        assert hand_meals.find(conn, "P1", TODAY, LUNCH) is None
        kept = hand_meals.find(conn, "erased-00", TODAY, LUNCH)
    assert kept is not None and kept.seq == first.seq and kept.reason == ""
    assert [(m.person_id, m.reason) for m in recent(db, TODAY)] == [
        ("P2", "忘带卡"),
        ("erased-00", ""),
    ]


def _hand_points(storage) -> list[int]:
    hand = storage.query('SELECT * FROM "taps" WHERE "device" = \'console:hand\'')
    return [row[0] for s in hand for row in s.values]


def test_the_kiosks_tap_of_the_same_meal_replaces_the_hand_meal(db, storage) -> None:
    """The card's tap is the stronger record: a kiosk meal of the same elder, local day and
    period (the elder tapped after all, or an offline kiosk uploaded it late) deletes the hand
    meal's point and marks its row; another period, day or elder leaves hand meals alone."""
    lunch = record(db, storage)  # P1, today's lunch, by hand
    other_day = record(db, storage, day=date(2026, 11, 29))
    other_person = record(db, storage, person="P2")
    kiosk = {"device": "k1", "kind": "meal", "site": "s1"}

    def kiosk_meal(seq: int, person: str, period: str, ts: int) -> None:
        fields: dict[str, FieldValue | None] = {
            "seq": seq,
            "event_id": f"e{seq}",
            "person_id": person,
        }
        storage.write([encode_point("taps", {**kiosk, "meal_period": period}, fields, ts)])

    tz_of = {"s1": TZ}.__getitem__
    kiosk_meal(1, "P1", "dinner", at(TODAY, 17, 30))  # another period
    kiosk_meal(2, "P1", "lunch", at(date(2026, 11, 28), 12))  # another day
    kiosk_meal(3, "P3", "lunch", at(TODAY, 12))  # another elder
    assert hand_meals.replace_by_kiosk(db, storage, tz_of, NOW) == []
    assert len(_hand_points(storage)) == 3

    kiosk_meal(4, "P1", "lunch", at(TODAY, 12, 5))  # the same meal, tapped after all
    replaced = hand_meals.replace_by_kiosk(db, storage, tz_of, NOW, persons={"P1"})
    assert [m.seq for m in replaced] == [lunch.seq]
    assert sorted(_hand_points(storage)) == sorted([other_day.ts_us, other_person.ts_us])
    with db.read() as conn:
        row = hand_meals.find(conn, "P1", TODAY, LUNCH)
    assert row is not None and row.replaced_by == "k1#4" and row.replaced_us == NOW
    assert hand_meals.replace_by_kiosk(db, storage, tz_of, NOW) == []  # done once
    # The meal counts once: the kiosk's; a new hand meal for it is refused.
    meals = storage.query(
        'SELECT count("seq") FROM "taps" WHERE "person_id" = \'P1\' '
        "AND \"meal_period\" = 'lunch' AND time >= '2026-11-30T00:00:00+08:00'"
    )
    assert meals[0].values[0][1] == 1
    with pytest.raises(HandMealRefused):
        record(db, storage)
