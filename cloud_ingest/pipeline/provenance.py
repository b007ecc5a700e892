"""Is a tap what the registry says could have happened? card -> person -> site, at its time.

The kiosk decides what a tap means from its roster, so a device (or whoever holds its
certificate) can claim any person. Ingest checks each tap that names a person against the
registry's card history (`card_assignments`) at the tap's own time, so a card reassigned
yesterday is still right for yesterday's taps:

- the person must be in the registry;
- the card must have been that person's at the tap's time, or until at most `roster_lag_s`
  before it (a kiosk's roster may lag a reassignment), give or take `CLOCK_SKEW_US` (a kiosk
  clock may be off by minutes; one that never synced is checked at the time of arrival);
  before a card's first recorded holder, that holder counts as holding it;
- the person's home site must be the device's site (a site's roster holds only its people).

A tap whose ids are an erasure's token (`erased-…`, pseudonymised by the kiosk after an erase
command) is not checked: the person is gone from the registry by design, and the tap counts.

A mismatch is not lost: the tap is stored as a suspect point (`suspect_taps`, which no count
reads) and reported to the caller, which raises an alert naming what did not match.

The registry is read once per registry version into memory, never per tap: a batch of 5,000
costs dictionary lookups only.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from dataclasses import dataclass

from cloud_ingest.registry.store import Registry
from warmcard.contract import TapEvent

_OPEN = 2**62  # valid_to NULL: holds the card now
# Kiosk clocks may run up to 300 s ahead (the contract's clock_future limit) or behind.
CLOCK_SKEW_US = 600 * 1_000_000


@dataclass(frozen=True, slots=True)
class Mismatch:
    """What did not match for one tap; `what` is person_unknown, card_person or site."""

    what: str
    device_id: str
    site_id: str
    seq: int
    ts_us: int
    card_uid: str
    person_id: str
    detail_zh: str
    detail_en: str


class Provenance:
    """Checks taps against the registry's card history; cached per registry version."""

    def __init__(self, registry: Registry, *, roster_lag_s: float = 3 * 86400) -> None:
        self.registry = registry
        self.roster_lag_us = int(roster_lag_s * 1_000_000)
        self._lock = threading.Lock()
        self._snapshot = Snapshot({}, {}, self.roster_lag_us)
        self._version = -1

    def current(self) -> Snapshot:
        """The registry's people and card history as of its version now (read once per version);
        take one per batch."""
        with self._lock:
            version = self.registry.version
            if version != self._version:
                self._snapshot = self._load()
                self._version = version
            return self._snapshot

    def _load(self) -> Snapshot:
        homes = {p: s for p, s in self.registry.query("SELECT person_id, site_id FROM people")}
        history: dict[str, list[tuple[int, int, str]]] = defaultdict(list)
        for card, person, start, end in self.registry.query(
            "SELECT card_uid, person_id, valid_from, valid_to FROM card_assignments"
        ):
            history[card].append((start if start is not None else -1, end or _OPEN, person))
        for spans in history.values():
            spans.sort()
            # Before its first recorded holder nobody else held the card: that holder's older
            # taps (a backlog from before an import) are theirs.
            _, first_to, first_person = spans[0]
            spans[0] = (-1, first_to, first_person)
        return Snapshot(homes, dict(history), self.roster_lag_us)

    def check(self, site_id: str, event: TapEvent, ts_us: int, received_us: int) -> Mismatch | None:
        return self.current().check(site_id, event, ts_us, received_us)


@dataclass(frozen=True, slots=True)
class Snapshot:
    """One registry version's people (home sites) and card history; read-only, lock-free."""

    homes: dict[str, str]
    history: dict[str, list[tuple[int, int, str]]]  # card -> sorted [(from, to, person)]
    roster_lag_us: int

    def _holders(self, card: str, ts_us: int) -> list[str]:
        """Who held the card at ts_us, or until at most roster_lag before it."""
        spans = self.history.get(card, ())
        late = self.roster_lag_us + CLOCK_SKEW_US
        return [p for start, stop, p in spans if start - CLOCK_SKEW_US <= ts_us < stop + late]

    def check(self, site_id: str, event: TapEvent, ts_us: int, received_us: int) -> Mismatch | None:
        """None when the tap names no person or matches the registry."""
        person = event.person_id
        if person is None or event.erased:
            # A tap of an erased person, pseudonymised at the kiosk (v1.3): it counts like the
            # cloud's pseudonymised points and names nobody to alert about.
            return None
        home = self.homes.get(person)
        if home == site_id:
            holders = self._holders(event.card_uid, ts_us if event.clock_synced else received_us)
            if person in holders:
                return None
        else:
            holders = self._holders(event.card_uid, ts_us if event.clock_synced else received_us)
        card = event.card_uid
        if home is None:
            what = "person_unknown"
            zh = f"登记中没有此人 {person}（卡 {card}）"
            en = f"person {person} is not in the registry (card {card})"
        elif person not in holders:
            what = "card_person"
            was = "、".join(holders) or "无人"
            zh = f"卡 {card} 当时不属于 {person}（登记持卡人：{was}）"
            en = (
                f"card {card} was not {person}'s at that time "
                f"(registry holder: {', '.join(holders) or 'nobody'})"
            )
        else:
            what = "site"
            zh = f"{person} 属于 {home}，却在 {site_id} 的设备上刷卡"
            en = f"{person} belongs to {home}, tapped on a device of {site_id}"
        return Mismatch(what, event.device_id, site_id, event.seq, ts_us, card, person, zh, en)
