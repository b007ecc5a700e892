"""Live occupancy per site for today (in the site's time zone), and device status.

Rebuilt from InfluxDB at start and then every `live_resync_s` (so several ingest workers sharing
the subscription each show the full numbers), and updated from every batch InfluxDB accepted.
Events are kept by (device, seq), so a redelivered event is never counted twice; events from
another day (a backlog arriving late) do not touch today's numbers. A meal recorded by hand
(补录) and a kiosk's meal of the same elder and period count once, whichever came first: the
console replaces the hand meal by the tap (`console.hand_meals.replace_by_kiosk`).
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from cloud_ingest import i18n
from cloud_ingest.pipeline.influx import Storage, quote_ident
from cloud_ingest.pipeline.lineprotocol import HAND_DEVICE, MEASUREMENT
from cloud_ingest.registry.store import Registry
from warmcard.contract import DeviceStatus, Kind, MealPeriod, TapEvent
from warmcard.localtime import DEFAULT_TZ, day_window
from warmcard.timestamps import format_ts, now_us

log = logging.getLogger(__name__)

Clock = Callable[[], int]
Listener = Callable[[], None]


@dataclass(frozen=True, slots=True)
class LiveEvent:
    """What live state keeps of one tap."""

    device_id: str
    seq: int
    ts_us: int
    kind: Kind
    meal_period: MealPeriod | None
    person_id: str | None

    @classmethod
    def from_tap(cls, event: TapEvent, ts_us: int) -> LiveEvent:
        return cls(
            event.device_id, event.seq, ts_us, event.kind, event.meal_period, event.person_id
        )


@dataclass
class SiteDay:
    """One site's numbers for one local day."""

    date: str
    start_us: int
    end_us: int
    seen: set[tuple[str, int]] = field(default_factory=set)
    latest: dict[str, tuple[int, bool]] = field(default_factory=dict)  # person -> (ts, inside)
    present: int = 0
    arrived: set[str] = field(default_factory=set)
    meals: Counter[str] = field(default_factory=Counter)
    # (person, period) -> whether the meal counted was recorded by hand
    meal_by_hand: dict[tuple[str, str], bool] = field(default_factory=dict)
    meal_repeats: int = 0
    unknown_cards: int = 0
    last_event_us: int | None = None

    def add(self, ev: LiveEvent) -> bool:
        """Count one event once; False when it was already counted or is not today's."""
        if not self.start_us <= ev.ts_us < self.end_us:
            return False
        key = (ev.device_id, ev.seq)
        if key in self.seen:
            return False
        self.seen.add(key)
        kind = ev.kind
        if kind is Kind.CHECK_IN or kind is Kind.CHECK_OUT:
            inside = kind is Kind.CHECK_IN
            person = ev.person_id or ""
            if inside:
                self.arrived.add(person)
            previous = self.latest.get(person)
            if previous is None or ev.ts_us >= previous[0]:
                was_inside = previous is not None and previous[1]
                self.latest[person] = (ev.ts_us, inside)
                self.present += int(inside) - int(was_inside)
        elif kind is Kind.MEAL:
            period = ev.meal_period.value if ev.meal_period else "unknown"
            by_hand = ev.device_id == HAND_DEVICE
            eaten = (ev.person_id or "", period)
            first = self.meal_by_hand.get(eaten)
            if first is None or not (first or by_hand):
                self.meals[period] += 1  # two kiosks' meals both count, as in the reports
            if first is None or (first and not by_hand):
                self.meal_by_hand[eaten] = by_hand  # a tap replacing a hand meal: not counted
        elif kind is Kind.MEAL_REPEAT:
            self.meal_repeats += 1
        elif kind is Kind.UNKNOWN_CARD:
            self.unknown_cards += 1
        if self.last_event_us is None or ev.ts_us > self.last_event_us:
            self.last_event_us = ev.ts_us
        return True


@dataclass
class DeviceSeen:
    status: DeviceStatus | None
    received_us: int


class LiveState:
    """Thread-safe; the consumer applies batches, the API reads snapshots."""

    def __init__(
        self,
        registry: Registry,
        storage: Storage | None,
        *,
        default_tz: str = DEFAULT_TZ,
        clock: Clock = now_us,
        stale_s: float = 300.0,
    ) -> None:
        self.registry = registry
        self.storage = storage
        self.default_tz = default_tz
        self.clock = clock
        self.stale_us = int(stale_s * 1_000_000)
        self._lock = threading.Lock()
        self._days: dict[str, SiteDay] = {}
        self._devices: dict[str, DeviceSeen] = {}
        self._stored_seq: dict[str, int] = {}  # device -> highest seq known stored
        self._tzs: dict[str, ZoneInfo] = {}
        self._pending: list[tuple[str, LiveEvent]] | None = None  # applied during a rebuild
        self._listeners: list[Listener] = []
        self.version = 0
        # Per-site change marks, so a stream can send only the sites that changed.
        self._site_versions: dict[str, int] = {}
        self._all_changed_at = 0  # a rebuild changes every site at once
        self.last_sync_us: int | None = None

    # ------------------------------------------------------------------ plumbing

    def add_listener(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def remove_listener(self, listener: Listener) -> None:
        if listener in self._listeners:
            self._listeners.remove(listener)

    def _changed(self, sites: Iterable[str] | None = None) -> None:
        """Bump the version; `sites` None means every site may have changed."""
        with self._lock:
            self.version += 1
            if sites is None:
                self._all_changed_at = self.version
            else:
                for site_id in sites:
                    self._site_versions[site_id] = self.version
        for listener in list(self._listeners):
            try:
                listener()
            except Exception:  # a broken listener must not stall ingest
                log.exception("live listener failed")

    def _tz(self, site_id: str) -> ZoneInfo:
        tz = self._tzs.get(site_id)
        if tz is None:
            site = self.registry.site(site_id)
            tz = ZoneInfo(site.tz if site else self.default_tz)
            self._tzs[site_id] = tz
        return tz

    def _today(self, site_id: str, now: int) -> SiteDay:
        day = self._days.get(site_id)
        if day is None or not day.start_us <= now < day.end_us:
            date, start, end = day_window(self._tz(site_id), now)
            day = SiteDay(date, start, end)
            self._days[site_id] = day
        return day

    # ------------------------------------------------------------------ updates

    def apply(self, events: Iterable[tuple[str, LiveEvent]]) -> int:
        """Count events InfluxDB accepted; returns how many were new today."""
        now = self.clock()
        added = 0
        touched: set[str] = set()
        with self._lock:
            pending = self._pending
            for site_id, ev in events:
                if pending is not None:
                    pending.append((site_id, ev))
                if ev.seq > self._stored_seq.get(ev.device_id, 0):
                    self._stored_seq[ev.device_id] = ev.seq
                if self._today(site_id, now).add(ev):
                    added += 1
                    touched.add(site_id)
        if added:
            self._changed(touched)
        return added

    def update_status(self, device_id: str, status: DeviceStatus | None) -> None:
        """A heartbeat or last-will; None when the retained status was cleared."""
        with self._lock:
            self._devices[device_id] = DeviceSeen(status, self.clock())
        site_id = self.registry.site_of(device_id)
        self._changed([site_id] if site_id else [])

    def stored_seqs(self) -> dict[str, int]:
        """The highest seq of each device that InfluxDB is known to hold (today's rebuild and
        the stored-taps channel since), for the unstored-taps alert."""
        with self._lock:
            return dict(self._stored_seq)

    def device_seen(self) -> dict[str, DeviceSeen]:
        """The latest status (or clear) received from each device, for health alerts."""
        with self._lock:
            return dict(self._devices)

    def rebuild(self) -> int:
        """Recount today from InfluxDB; returns the number of today's points read."""
        if self.storage is None:
            return 0
        now = self.clock()
        with self._lock:
            self._tzs.clear()  # a re-import may have changed a site's time zone
            sites = {s.site_id for s in self.registry.sites()}
            windows = {site: day_window(self._tz(site), now) for site in sites}
        if not windows:
            return 0
        start = min(w[1] for w in windows.values())
        end = max(w[2] for w in windows.values())
        with self._lock:
            self._pending = []
        try:
            days, read = self._read_days(windows, start, end)
        except BaseException:
            with self._lock:
                self._pending = None
            raise
        with self._lock:
            pending, self._pending = self._pending or [], None
            for site_id, ev in pending:
                if site_id in days:
                    days[site_id].add(ev)
            self._days = days
            for day in days.values():
                for device, seq in day.seen:
                    if seq > self._stored_seq.get(device, 0):
                        self._stored_seq[device] = seq
        self.last_sync_us = self.clock()
        self._changed()
        return read

    def _read_days(
        self, windows: dict[str, tuple[str, int, int]], start: int, end: int
    ) -> tuple[dict[str, SiteDay], int]:
        assert self.storage is not None
        series = self.storage.query(
            f'SELECT "seq", "person_id", "device", "site", "kind", "meal_period" '
            f"FROM {quote_ident(MEASUREMENT)} "
            f"WHERE time >= '{format_ts(start)}' AND time < '{format_ts(end)}'"
        )
        days = {site: SiteDay(*w) for site, w in windows.items()}
        read = 0
        for s in series:
            idx = {c: i for i, c in enumerate(s.columns)}
            for row in s.values:
                day = days.get(row[idx["site"]])
                if day is None:
                    continue
                meal = row[idx["meal_period"]]
                ev = LiveEvent(
                    row[idx["device"]],
                    int(row[idx["seq"]]),
                    int(row[idx["time"]]),
                    Kind(row[idx["kind"]]),
                    MealPeriod(meal) if meal else None,
                    row[idx["person_id"]],
                )
                read += day.add(ev)
        return days, read

    # ------------------------------------------------------------------ reading

    def device_status(self, device_id: str) -> DeviceStatus | None:
        """The device's latest heartbeat (or last will), if any was received."""
        seen = self._devices.get(device_id)
        return seen.status if seen is not None else None

    def changes_since(self, version: int) -> tuple[int, set[str] | None]:
        """(current version, sites changed after `version`); None when every site may have."""
        with self._lock:
            current = self.version
            if version < self._all_changed_at:
                return current, None
            return current, {s for s, v in self._site_versions.items() if v > version}

    def site_rows(self, site_ids: Iterable[str] | None = None) -> list[dict[str, Any]]:
        """Today's numbers per registry site (all, or those named), in site id order."""
        now = self.clock()
        if site_ids is None:
            sites = self.registry.sites()
        else:
            found = (self.registry.site(s) for s in sorted(set(site_ids)))
            sites = [s for s in found if s is not None]
        devices: dict[str, list[Any]] = {}
        for device in self.registry.devices():
            devices.setdefault(device.site_id, []).append(device)
        rows = []
        with self._lock:
            for site in sites:
                day = self._today(site.site_id, now)
                meals = {p.value: day.meals.get(p.value, 0) for p in MealPeriod}
                rows.append(
                    {
                        "site_id": site.site_id,
                        "name_zh": site.name_zh,
                        "name_en": site.name_en,
                        "tz": site.tz,
                        "date": day.date,
                        "capacity": site.capacity,
                        "present": day.present,
                        "arrivals": len(day.arrived),
                        "meals": meals,
                        "meals_total": sum(meals.values()),
                        "meal_repeats": day.meal_repeats,
                        "unknown_cards": day.unknown_cards,
                        "last_event_at": format_ts(day.last_event_us)
                        if day.last_event_us
                        else None,
                        "last_event_at_local": i18n.format_ts(day.last_event_us, site.tz)
                        if day.last_event_us
                        else None,
                        "devices": [
                            self._device_json(d.device_id, d.mode.value, now, site.tz)
                            for d in devices.get(site.site_id, [])
                        ],
                    }
                )
        return rows

    def present_people(self, site_id: str) -> list[tuple[str, int]]:
        """(person_id, since µs) of everyone checked in now at the site, earliest first."""
        now = self.clock()
        with self._lock:
            day = self._today(site_id, now)
            inside = [(p, ts) for p, (ts, is_in) in day.latest.items() if is_in and p]
        return sorted(inside, key=lambda item: (item[1], item[0]))

    def snapshot(self) -> dict[str, Any]:
        """The /api/v1/occupancy document."""
        now = self.clock()
        return {
            "generated_at": format_ts(now),
            "synced_at": format_ts(self.last_sync_us) if self.last_sync_us else None,
            "sites": self.site_rows(),
        }

    def _device_json(self, device_id: str, mode: str, now: int, tz: str) -> dict[str, Any]:
        seen = self._devices.get(device_id)
        out: dict[str, Any] = {"device_id": device_id, "mode": mode, "state": "unknown"}
        if seen is None:
            return out
        out["status_received_at"] = format_ts(seen.received_us)
        out["status_received_at_local"] = i18n.format_ts(seen.received_us, tz, seconds=True)
        status = seen.status
        if status is None:
            return out
        state: str = status.state
        if state == "online" and now - seen.received_us > self.stale_us:
            state = "stale"
        out.update(
            state=state,
            reader=status.reader.value if status.reader else None,
            outbox_depth=status.outbox_depth,
            last_seq=status.last_seq,
            clock_synced=status.clock_synced,
            software=status.software,
        )
        return out
