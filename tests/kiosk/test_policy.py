"""Kiosk policy: what a tap means in entrance and canteen mode, and state rebuilt from events."""

from __future__ import annotations

import itertools

from kiosk.policy import Decision, Outcome, Policy
from warmcard.contract import (
    DeviceConfig,
    Kind,
    MealPeriod,
    MealWindow,
    Mode,
    RosterEntry,
    TapEvent,
)
from warmcard.timestamps import format_ts, new_event_id, parse_ts

ALICE = RosterEntry(card_uid="04A1B2C3D4E5F6", person_id="p-0001", display_name="李秀英")
BOB = RosterEntry(card_uid="0A0B0C0D", person_id="p-0002", display_name="王建国")
STRANGER = "DEADBEEF"
ROSTER = {e.card_uid: e for e in (ALICE, BOB)}

# 2026-03-02 in Dali (UTC+8): local 08:00 is 00:00Z.
MORNING = parse_ts("2026-03-02T00:00:00.000000Z")
S = 1_000_000


def config(mode: Mode = Mode.ENTRANCE, **kw: object) -> DeviceConfig:
    return DeviceConfig.model_validate(
        {"device_id": "k-001", "site_id": "s-001", "mode": mode, **kw}
    )


def canteen() -> DeviceConfig:
    return config(
        Mode.CANTEEN,
        meals=[
            MealWindow(period=MealPeriod.BREAKFAST, start="07:00", end="09:00"),
            MealWindow(period=MealPeriod.LUNCH, start="11:30", end="13:00"),
            MealWindow(period=MealPeriod.DINNER, start="17:00", end="18:30"),
        ],
    )


class Recorder:
    """Plays the gateway's part: turns decisions into events and applies them."""

    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self.seq = itertools.count(1)
        self.events: list[TapEvent] = []

    def tap(self, uid: str, now_us: int) -> Decision:
        decision = self.policy.decide(uid, now_us)
        if decision.kind is not None:
            event = TapEvent(
                event_id=new_event_id(now_us),
                device_id="k-001",
                seq=next(self.seq),
                ts=format_ts(now_us),
                card_uid=uid,
                kind=decision.kind,
                person_id=decision.person_id,
                meal_period=decision.meal_period,
                auto=decision.auto,
            )
            self.policy.apply(event)
            self.events.append(event)
        return decision


def test_entrance_alternates_check_in_and_out_with_name() -> None:
    kiosk = Recorder(Policy(config(), ROSTER.get))
    kinds = [kiosk.tap(ALICE.card_uid, MORNING + i * 60 * S).kind for i in range(4)]
    assert kinds == [Kind.CHECK_IN, Kind.CHECK_OUT, Kind.CHECK_IN, Kind.CHECK_OUT]
    first = kiosk.policy.decide(BOB.card_uid, MORNING + 300 * S)
    assert first.outcome is Outcome.SUCCESS
    assert first.message == "王建国 已签到 Checked in"
    assert first.person_id == "p-0002"


def test_repeat_within_debounce_makes_no_event() -> None:
    kiosk = Recorder(Policy(config(debounce_s=10), ROSTER.get))
    assert kiosk.tap(ALICE.card_uid, MORNING).kind is Kind.CHECK_IN
    repeat = kiosk.tap(ALICE.card_uid, MORNING + 9 * S)
    assert repeat.kind is None
    assert repeat.outcome is Outcome.REPEAT
    assert repeat.message == "已记录 Already recorded"
    # another card is not debounced by Alice's tap
    assert kiosk.tap(BOB.card_uid, MORNING + 9 * S).kind is Kind.CHECK_IN
    assert kiosk.tap(ALICE.card_uid, MORNING + 11 * S).kind is Kind.CHECK_OUT
    assert len(kiosk.events) == 3


def test_new_local_day_starts_with_check_in() -> None:
    kiosk = Recorder(Policy(config(), ROSTER.get))
    kiosk.tap(ALICE.card_uid, MORNING)  # in, and never out
    # 2026-03-02T16:00Z is local midnight of 03-03 in Asia/Shanghai.
    before_midnight = parse_ts("2026-03-02T15:59:00.000000Z")
    after_midnight = parse_ts("2026-03-02T16:01:00.000000Z")
    assert kiosk.tap(ALICE.card_uid, before_midnight).kind is Kind.CHECK_OUT
    kiosk.tap(ALICE.card_uid, before_midnight + 30 * S)  # in again, late
    assert kiosk.tap(ALICE.card_uid, after_midnight).kind is Kind.CHECK_IN


def test_auto_check_out_at_closing_once_per_day() -> None:
    kiosk = Recorder(Policy(config(closing="18:00"), ROSTER.get))
    kiosk.tap(ALICE.card_uid, MORNING)
    kiosk.tap(BOB.card_uid, MORNING)
    kiosk.tap(BOB.card_uid, MORNING + 3600 * S)  # Bob left
    closing = parse_ts("2026-03-02T10:00:00.000000Z")  # 18:00 local
    assert kiosk.policy.due_auto_checkouts(closing - S) == []
    due = kiosk.policy.due_auto_checkouts(closing)
    assert [(d.person_id, d.kind, d.auto) for d in due] == [("p-0001", Kind.CHECK_OUT, True)]
    for decision in due:
        event = TapEvent(
            event_id=new_event_id(closing),
            device_id="k-001",
            seq=99,
            ts=format_ts(closing),
            card_uid=decision.card_uid,
            kind=Kind.CHECK_OUT,
            person_id=decision.person_id,
            auto=True,
        )
        kiosk.policy.apply(event)
    assert kiosk.policy.inside == {}
    kiosk.tap(BOB.card_uid, closing + 60 * S)  # a late arrival after closing
    assert kiosk.policy.due_auto_checkouts(closing + 120 * S) == []  # swept once already
    # next day's closing sweeps again
    assert kiosk.tap(ALICE.card_uid, MORNING + 86400 * S).kind is Kind.CHECK_IN
    due = kiosk.policy.due_auto_checkouts(closing + 86400 * S)
    assert [d.person_id for d in due] == ["p-0001"]


def test_canteen_meal_periods_and_nearest_window() -> None:
    policy = Policy(canteen(), ROSTER.get)
    local = "2026-03-02T{}:00.000000Z"

    def at(utc_hhmm: str) -> MealPeriod:
        return policy.meal_period_at(parse_ts(local.format(utc_hhmm)))

    assert at("23:30") is MealPeriod.BREAKFAST  # 07:30 local, the day before in UTC
    assert at("04:00") is MealPeriod.LUNCH  # 12:00 local
    assert at("09:10") is MealPeriod.DINNER  # 17:10 local
    assert at("05:40") is MealPeriod.LUNCH  # 13:40: a late lunch is still lunch
    assert at("01:50") is MealPeriod.BREAKFAST  # 09:50: nearer breakfast's end than lunch
    assert at("03:00") is MealPeriod.LUNCH  # 11:00: nearer lunch's start
    assert at("14:00") is MealPeriod.DINNER  # 22:00: 3.5 h after dinner, 9 h before breakfast
    assert at("19:00") is MealPeriod.BREAKFAST  # 03:00: across midnight, 4 h before breakfast


def test_second_meal_in_same_period_is_meal_repeat() -> None:
    kiosk = Recorder(Policy(canteen(), ROSTER.get))
    lunch = parse_ts("2026-03-02T04:00:00.000000Z")
    first = kiosk.tap(ALICE.card_uid, lunch)
    assert (first.kind, first.meal_period, first.outcome) == (
        Kind.MEAL,
        MealPeriod.LUNCH,
        Outcome.SUCCESS,
    )
    assert first.message == "李秀英 午餐已取 Lunch served"  # the meal in Chinese on the main line
    second = kiosk.tap(ALICE.card_uid, lunch + 120 * S)
    assert (second.kind, second.outcome) == (Kind.MEAL_REPEAT, Outcome.MEAL_REPEAT)
    assert second.message == "李秀英 本餐已领 Meal already served"
    assert second.meal_period is MealPeriod.LUNCH
    dinner = kiosk.tap(ALICE.card_uid, parse_ts("2026-03-02T09:30:00.000000Z"))
    assert (dinner.kind, dinner.meal_period) == (Kind.MEAL, MealPeriod.DINNER)
    assert kiosk.tap(BOB.card_uid, lunch + 130 * S).kind is Kind.MEAL


def test_unknown_card_is_recorded_without_person() -> None:
    for mode in (Mode.ENTRANCE, Mode.CANTEEN):
        kiosk = Recorder(Policy(config(mode), ROSTER.get))
        decision = kiosk.tap(STRANGER, MORNING)
        assert decision.kind is Kind.UNKNOWN_CARD
        assert decision.outcome is Outcome.UNKNOWN
        assert decision.person_id is None
        assert kiosk.events[0].person_id is None


def test_state_rebuilt_from_replayed_events() -> None:
    entrance = Recorder(Policy(config(), ROSTER.get))
    entrance.tap(ALICE.card_uid, MORNING)
    entrance.tap(BOB.card_uid, MORNING + 60 * S)
    entrance.tap(BOB.card_uid, MORNING + 120 * S)
    restarted = Policy(config(), ROSTER.get)
    assert restarted.replay(entrance.events) == 3
    assert restarted.inside == {"p-0001": ALICE.card_uid}
    assert restarted.decide(ALICE.card_uid, MORNING + 600 * S).kind is Kind.CHECK_OUT
    assert restarted.decide(BOB.card_uid, MORNING + 600 * S).kind is Kind.CHECK_IN
    # the debounce survives too
    assert restarted.decide(BOB.card_uid, MORNING + 125 * S).outcome is Outcome.REPEAT

    lunch = parse_ts("2026-03-02T04:00:00.000000Z")
    canteen_kiosk = Recorder(Policy(canteen(), ROSTER.get))
    canteen_kiosk.tap(ALICE.card_uid, lunch)
    again = Policy(canteen(), ROSTER.get)
    again.replay(canteen_kiosk.events)
    assert again.decide(ALICE.card_uid, lunch + 300 * S).kind is Kind.MEAL_REPEAT
