"""What a tap means at this kiosk: pure decisions from the local roster, local state and a time.

No I/O and no clock of its own: the caller passes `now_us`, records the decided event, and only
then calls `apply(event)`. The same `apply` replays today's events from the outbox at start, so
a restart never flips check-in/check-out, and decisions are identical online and offline.

Rules worth knowing:
- The same card again within `debounce_s` of its last recorded event is "already recorded" and
  makes no event, in both modes (a card waved twice is one tap). A wall clock stepped back by
  less than `debounce_s` also counts as a repeat.
- Entrance: per person and local day, check_in, check_out, check_in, ... At closing time the
  kiosk checks out, once per day, everyone still inside (auto=True).
- Canteen: a tap inside a meal window is that meal. A tap outside every window is attributed to
  the nearest window (by clock distance, ties to the earlier-listed window): staff serving a
  late lunch at 13:40 is still a lunch, and a served meal is never lost. Without configured
  windows the defaults below apply. A second meal for a person in the same period and day is
  recorded as meal_repeat with a distinct warning.
- Unknown cards are recorded as unknown_card (for enrolment) with no person.
- A staff card (roster role `staff`) at a canteen records nothing: it opens the list from
  which staff record a meal by hand for an elder who forgot the card (`decide_manual`), under
  the same "already served" rule, marked manual with the staff card as witness. At an entrance
  a staff card checks in and out like any card.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from kiosk.policy.outcomes import (
    MSG_ENROLLING,
    MSG_NOT_ON_ROSTER,
    MSG_REPEAT,
    MSG_UNKNOWN,
    Decision,
    Outcome,
)
from kiosk.policy.roster import Lookup
from warmcard.contract import (
    DeviceConfig,
    Kind,
    MealPeriod,
    MealWindow,
    Mode,
    Role,
    RosterEntry,
    TapEvent,
)
from warmcard.localtime import DEFAULT_TZ

log = logging.getLogger("warmcard.kiosk.policy")


DEFAULT_MEALS = (
    MealWindow(period=MealPeriod.BREAKFAST, start="07:00", end="09:00"),
    MealWindow(period=MealPeriod.LUNCH, start="11:00", end="13:30"),
    MealWindow(period=MealPeriod.DINNER, start="17:00", end="19:00"),
)
# (zh, en): the Chinese name goes on the screen's main line, the English one below it.
MEAL_NAMES = {
    MealPeriod.BREAKFAST: ("早餐", "Breakfast"),
    MealPeriod.LUNCH: ("午餐", "Lunch"),
    MealPeriod.DINNER: ("晚餐", "Dinner"),
}


def zone(tz: str) -> ZoneInfo:
    """The site's time zone; an unknown name falls back to China time rather than stopping."""
    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        log.error("unknown time zone %r in config; using %s", tz, DEFAULT_TZ)
        return ZoneInfo(DEFAULT_TZ)


def _minutes(hhmm: str) -> int:
    hours, minutes = hhmm.split(":")
    return int(hours) * 60 + int(minutes)


def _named(name: str, text: str) -> str:
    return f"{name} {text}" if name else text


class Policy:
    """Entrance or canteen rules for one kiosk, with today's state."""

    def __init__(self, config: DeviceConfig, lookup: Lookup) -> None:
        self.config = config
        self.lookup = lookup
        self.tz = zone(config.tz)
        self.meals = tuple(config.meals) or DEFAULT_MEALS
        self._day: date | None = None
        self._inside: dict[str, str] = {}  # person_id -> card last used
        self._meals: set[tuple[str, MealPeriod]] = set()
        self._last_tap: dict[str, int] = {}  # card_uid -> ts_us of its last recorded event
        self._auto_done = False

    # ------------------------------------------------------------------ time helpers

    def local(self, ts_us: int) -> datetime:
        return datetime.fromtimestamp(ts_us / 1_000_000, tz=self.tz)

    def local_day(self, ts_us: int) -> date:
        return self.local(ts_us).date()

    def day_start_us(self, now_us: int) -> int:
        """UTC microseconds of local midnight starting the day that contains now_us."""
        start = datetime.combine(self.local_day(now_us), time(0), tzinfo=self.tz)
        return int(start.timestamp()) * 1_000_000

    def closing_us(self, now_us: int) -> int:
        day = self.local_day(now_us)
        closing = datetime.combine(day, time(0), tzinfo=self.tz) + timedelta(
            minutes=_minutes(self.config.closing)
        )
        return int(closing.timestamp()) * 1_000_000

    def meal_period_at(self, now_us: int) -> MealPeriod:
        """The window containing the local time, else the nearest one (see module docstring)."""
        local = self.local(now_us)
        minute = local.hour * 60 + local.minute
        best: tuple[float, MealPeriod] | None = None
        for window in self.meals:
            start, end = _minutes(window.start), _minutes(window.end)
            inside = start <= minute < end if start < end else minute >= start or minute < end
            if inside:
                return window.period
            gap = min(
                min(abs(minute - edge), 1440 - abs(minute - edge)) for edge in (start, end - 1)
            )
            if best is None or gap < best[0]:
                best = (gap, window.period)
        assert best is not None  # self.meals is never empty
        return best[1]

    # ------------------------------------------------------------------ state

    def _roll(self, day: date) -> None:
        """A new local day starts with nobody inside and no meals served."""
        if self._day is None or day > self._day:
            self._day = day
            self._inside.clear()
            self._meals.clear()
            self._auto_done = False

    def apply(self, event: TapEvent) -> None:
        """Take a recorded event into today's state (after commit, and when replaying)."""
        ts = event.ts_us
        day = self.local_day(ts)
        self._roll(day)
        previous = self._last_tap.get(event.card_uid)
        if previous is None or ts > previous:
            self._last_tap[event.card_uid] = ts
        if day != self._day or event.person_id is None:
            return  # an older day's event (clock stepped back over midnight) changes no state
        if event.kind is Kind.CHECK_IN:
            self._inside[event.person_id] = event.card_uid
        elif event.kind is Kind.CHECK_OUT:
            self._inside.pop(event.person_id, None)
            if event.auto:
                self._auto_done = True
        elif event.kind is Kind.MEAL and event.meal_period is not None:
            self._meals.add((event.person_id, event.meal_period))

    def replay(self, events: Iterable[TapEvent]) -> int:
        """Rebuild state from recorded events in seq order; returns how many."""
        count = 0
        for event in events:
            self.apply(event)
            count += 1
        return count

    @property
    def inside(self) -> dict[str, str]:
        """Persons checked in and not out today: person_id -> card_uid."""
        return dict(self._inside)

    def served(self, person_id: str, period: MealPeriod) -> bool:
        return (person_id, period) in self._meals

    # ------------------------------------------------------------------ decisions

    def decide(self, card_uid: str, now_us: int) -> Decision:
        """What this tap means now. Changes no state: call apply() with the recorded event."""
        self._roll(self.local_day(now_us))
        last = self._last_tap.get(card_uid)
        if last is not None and abs(now_us - last) < self.config.debounce_s * 1_000_000:
            return Decision(card_uid, None, Outcome.REPEAT, MSG_REPEAT)
        entry = self.lookup(card_uid)
        if entry is None:
            # Still an unknown_card event: the console captures it for the enrol page.
            enrolling = now_us < self.config.enrol_until_us
            message = MSG_ENROLLING if enrolling else MSG_UNKNOWN
            return Decision(card_uid, Kind.UNKNOWN_CARD, Outcome.UNKNOWN, message)
        name, person = entry.display_name, entry.person_id
        if entry.role is Role.STAFF and self.config.mode is Mode.CANTEEN:
            period = self.meal_period_at(now_us)  # the meal the list records, in its header
            zh, en = MEAL_NAMES[period]
            return Decision(card_uid, None, Outcome.STAFF, f"{zh} {en}", person, period)
        if self.config.mode is Mode.ENTRANCE:
            if person in self._inside:
                message = _named(name, "已签退 Checked out")
                return Decision(card_uid, Kind.CHECK_OUT, Outcome.SUCCESS, message, person)
            message = _named(name, "已签到 Checked in")
            return Decision(card_uid, Kind.CHECK_IN, Outcome.SUCCESS, message, person)
        return self._meal(entry, now_us)

    def _meal(self, entry: RosterEntry, now_us: int, witness_card: str | None = None) -> Decision:
        """A meal for this elder now, or the "already served" warning (card or by hand)."""
        name, person = entry.display_name, entry.person_id
        period = self.meal_period_at(now_us)
        zh, en = MEAL_NAMES[period]
        manual = witness_card is not None
        if (person, period) in self._meals:
            kind, outcome, text = (
                Kind.MEAL_REPEAT,
                Outcome.MEAL_REPEAT,
                "本餐已领 Meal already served",
            )
        else:
            by_hand = ("（补录）", " (recorded by staff)") if manual else ("", "")
            kind, outcome = Kind.MEAL, Outcome.SUCCESS
            text = f"{zh}已取{by_hand[0]} {en} served{by_hand[1]}"
        return Decision(
            entry.card_uid,
            kind,
            outcome,
            _named(name, text),
            person,
            period,
            manual=manual,
            witness_card=witness_card,
        )

    def meal_list(
        self, entries: Iterable[RosterEntry], now_us: int
    ) -> list[tuple[RosterEntry, bool]]:
        """Today's elders for the staff's list, one entry per person, each with "served"."""
        self._roll(self.local_day(now_us))
        period = self.meal_period_at(now_us)
        people: dict[str, RosterEntry] = {}
        for entry in entries:
            if entry.role is Role.ELDER:
                people.setdefault(entry.person_id, entry)
        ordered = sorted(people.values(), key=lambda e: (e.display_name, e.person_id))
        return [(e, (e.person_id, period) in self._meals) for e in ordered]

    def decide_manual(
        self, elder: RosterEntry | None, witness: RosterEntry, now_us: int
    ) -> Decision:
        """A meal staff record by hand for `elder`, vouched for by the `witness` staff card."""
        self._roll(self.local_day(now_us))
        if elder is None or elder.role is not Role.ELDER:
            return Decision(witness.card_uid, None, Outcome.UNKNOWN, MSG_NOT_ON_ROSTER)
        return self._meal(elder, now_us, witness_card=witness.card_uid)

    def due_auto_checkouts(self, now_us: int) -> list[Decision]:
        """After closing, once per day: check out everyone still inside (entrance mode only)."""
        self._roll(self.local_day(now_us))
        if self.config.mode is not Mode.ENTRANCE or self._auto_done:
            return []
        if now_us < self.closing_us(now_us):
            return []
        if not self._inside:
            self._auto_done = True  # nobody to sweep: the day's sweep is done
            return []
        decisions = []
        for person, card in sorted(self._inside.items()):
            entry = self.lookup(card)
            name = entry.display_name if entry is not None else ""
            decisions.append(
                Decision(
                    card,
                    Kind.CHECK_OUT,
                    Outcome.SUCCESS,
                    _named(name, "闭馆自动签退 Checked out at closing"),
                    person,
                    auto=True,
                )
            )
        return decisions
