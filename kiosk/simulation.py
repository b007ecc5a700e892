"""Simulated kiosks playing a realistic day: shipped code, used by the demo and the tests.

Each kiosk is a full `Kiosk` with a SimReader, its own data dir and its own MQTT connection.
The day is planned from each kiosk's retained config and roster, so it fits whatever opening
hours and meal windows the cloud configured (the demo compresses them into minutes):
- entrance: a few elders wait at the gate and tap in the first seconds after opening, most
  arrive in the first third of the opening hours and leave in the last third; some stay until
  closing and are checked out automatically; a few tap twice at once;
- canteen: elders present during a meal window are served once, a few get a second meal tap;
- the odd card nobody enrolled.
Windows already over when the simulation starts are skipped; the part still to come is played.
The plan is deterministic given the seed, the configs and rosters, and the start time.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from datetime import time as dtime
from pathlib import Path

from firmware_gateway.clock import Clock, ManualClock, SystemClock
from firmware_gateway.readers.sim import SimReader
from firmware_gateway.settings import GatewaySettings
from firmware_gateway.uplink import UplinkTiming
from kiosk.errors import SimulationError
from kiosk.feedback import LogFeedback
from kiosk.policy import zone
from kiosk.runtime import Kiosk
from warmcard.contract import DeviceConfig, Mode, Roster
from warmcard.settings import MqttSettings

log = logging.getLogger("warmcard.kiosk.simulation")

S = 1_000_000
GATE_QUEUE = 3  # elders waiting at the gate, who tap within the first seconds after opening


@dataclass(frozen=True, order=True)
class PlannedTap:
    at_us: int
    device_id: str
    card_uid: str
    note: str = field(compare=False)  # arrive, leave, repeat, meal, second_meal, unknown


@dataclass
class SimKiosk:
    kiosk: Kiosk
    reader: SimReader
    feedback: LogFeedback


def _at(day: datetime, hhmm: str) -> int:
    hours, minutes = hhmm.split(":")
    moment = day + timedelta(hours=int(hours), minutes=int(minutes))
    return int(moment.timestamp() * S)


def _unknown_uid(rng: random.Random, known: set[str]) -> str:
    while True:
        uid = f"{rng.getrandbits(32):08X}"
        if uid not in known:
            return uid


def plan_day(
    kiosks: dict[str, tuple[DeviceConfig, Roster]],
    start_us: int,
    rng: random.Random,
    absent: frozenset[str] = frozenset(),
) -> list[PlannedTap]:
    """The taps of the rest of today for every kiosk, in time order; the `absent` cards stay
    home (the demo's elders due a visit), everyone else's taps as without them."""
    taps: list[PlannedTap] = []
    sites: dict[str, list[str]] = {}
    for device_id in sorted(kiosks):
        sites.setdefault(kiosks[device_id][0].site_id, []).append(device_id)
    for site_devices in sites.values():
        entrances = [d for d in site_devices if kiosks[d][0].mode is Mode.ENTRANCE]
        canteens = [d for d in site_devices if kiosks[d][0].mode is Mode.CANTEEN]
        roster = kiosks[site_devices[0]][1]
        people = sorted(roster.entries, key=lambda e: e.card_uid)
        known = {e.card_uid for e in people}
        presence: dict[str, tuple[int, int]] = {}  # card -> (arrive, leave) for canteen timing
        earliest = start_us + 2 * S
        for device in entrances:
            config = kiosks[device][0]
            tz = zone(config.tz)
            day = datetime.combine(datetime.fromtimestamp(start_us / S, tz).date(), dtime(0), tz)
            opening = max(earliest, _at(day, config.opening))
            closing = _at(day, config.closing)
            span = closing - opening
            if span < 20 * S:
                continue
            queued = 0
            for person in people:
                if person.card_uid in presence or rng.random() > 0.85:
                    continue
                arrive = opening + int(rng.uniform(0.02, 0.35) * span)
                if queued < GATE_QUEUE:
                    queued += 1
                    arrive = opening + int(rng.uniform(1, 10) * S)
                taps.append(PlannedTap(arrive, device, person.card_uid, "arrive"))
                if config.debounce_s >= 2 and rng.random() < 0.1:
                    again = arrive + int(rng.uniform(0.5, config.debounce_s * 0.5) * S)
                    taps.append(PlannedTap(again, device, person.card_uid, "repeat"))
                leave = closing
                if rng.random() < 0.8:  # the others stay until the closing sweep
                    leave = opening + int(rng.uniform(0.65, 0.95) * span)
                    taps.append(PlannedTap(leave, device, person.card_uid, "leave"))
                presence[person.card_uid] = (arrive, leave)
            for _ in range(1 + rng.randrange(2)):
                when = opening + int(rng.uniform(0.05, 0.9) * span)
                taps.append(PlannedTap(when, device, _unknown_uid(rng, known), "unknown"))
        for device in canteens:
            config = kiosks[device][0]
            tz = zone(config.tz)
            day = datetime.combine(datetime.fromtimestamp(start_us / S, tz).date(), dtime(0), tz)
            for window in config.meals:
                begin, end = max(earliest, _at(day, window.start)), _at(day, window.end)
                if end - begin < 10 * S:
                    continue
                for person in people:
                    if entrances:
                        arrive, leave = presence.get(person.card_uid, (0, 0))
                        lo, hi = max(begin, arrive + S), min(end, leave - S)
                    else:
                        lo, hi = (begin, end) if rng.random() < 0.7 else (0, 0)
                    if hi - lo < 2 * S:
                        continue
                    served = lo + int(rng.uniform(0.05, 0.9) * (hi - lo))
                    taps.append(PlannedTap(served, device, person.card_uid, "meal"))
                    second = served + int((config.debounce_s + rng.uniform(1, 20)) * S)
                    if rng.random() < 0.06 and second < end - S:
                        taps.append(PlannedTap(second, device, person.card_uid, "second_meal"))
                if rng.random() < 0.5:
                    when = begin + int(rng.uniform(0.1, 0.9) * (end - begin))
                    taps.append(PlannedTap(when, device, _unknown_uid(rng, known), "unknown"))
    return sorted(t for t in taps if t.card_uid not in absent)


class Simulation:
    """Several simulated kiosks in one process, each a full `Kiosk` on its own connection."""

    def __init__(
        self,
        run_dir: Path | str,
        device_ids: Sequence[str],
        mqtt: MqttSettings,
        *,
        seed: int = 1,
        clock: Clock | None = None,
        heartbeat_s: float = 10.0,
        timing: UplinkTiming | None = None,
        tick_s: float = 1.0,
        min_free_bytes: int = 10 * 1024 * 1024,
        absent: Sequence[str] = (),
    ) -> None:
        if not device_ids:
            raise SimulationError("name at least one device to simulate (--device ID)")
        self.run_dir = Path(run_dir)
        self.clock: Clock = clock or SystemClock()
        self.rng = random.Random(seed)
        self.absent = frozenset(absent)
        self.played = 0
        self.kiosks: dict[str, SimKiosk] = {}
        for device_id in device_ids:
            reader = SimReader(f"sim:{device_id}")
            feedback = LogFeedback()
            settings = GatewaySettings(
                device_id=device_id,
                reader=reader.spec,
                data_dir=self.run_dir / device_id,
                mqtt=mqtt,
                heartbeat_s=heartbeat_s,
                min_free_bytes=min_free_bytes,
            )
            kiosk = Kiosk(
                settings,
                reader,
                feedback,
                self.clock,
                rng=random.Random(f"{seed}-{device_id}"),
                timing=timing,
                tick_s=tick_s,
            )
            self.kiosks[device_id] = SimKiosk(kiosk, reader, feedback)

    def start(self, ready_timeout: float = 60.0) -> None:
        """Start every kiosk and wait for each one's config and roster from the broker."""
        for sim in self.kiosks.values():
            sim.kiosk.start()
        deadline = time.monotonic() + ready_timeout
        missing = [
            device_id
            for device_id, sim in self.kiosks.items()
            if not sim.kiosk.wait_ready(max(0.0, deadline - time.monotonic()))
        ]
        if missing:
            raise SimulationError(
                f"no retained config and roster within {ready_timeout:.0f} s for: "
                + ", ".join(missing)
                + "; publish them to warmcard/v1/devices/<id>/config and /roster (retained)"
            )

    def plan(self) -> list[PlannedTap]:
        kiosks = {}
        for device_id, sim in self.kiosks.items():
            config, roster = sim.kiosk.config, sim.kiosk.roster
            if config is None or roster is None:
                raise SimulationError(f"{device_id} has no config or roster yet; call start()")
            kiosks[device_id] = (config, roster)
        return plan_day(kiosks, self.clock.now_us(), self.rng, self.absent)

    def play(self, taps: Sequence[PlannedTap], stop: threading.Event | None = None) -> int:
        """Present each card at its time; returns how many taps were played."""
        stop = stop or threading.Event()
        for tap in taps:
            if not self._wait_until(tap.at_us, stop):
                break
            kiosk = self.kiosks[tap.device_id]
            answered = len(kiosk.feedback.shown)
            kiosk.reader.tap(tap.card_uid)
            self.played += 1
            log.debug("%s: %s", tap.device_id, tap.note)
            if isinstance(self.clock, ManualClock):
                # Fast-forward: let the kiosk answer before time moves on.
                deadline = time.monotonic() + 10
                while len(kiosk.feedback.shown) <= answered and time.monotonic() < deadline:
                    time.sleep(0.002)
        return self.played

    def _wait_until(self, at_us: int, stop: threading.Event) -> bool:
        if isinstance(self.clock, ManualClock):
            ahead = at_us - self.clock.now_us()
            if ahead > 0:
                self.clock.advance(ahead / S)
            return not stop.is_set()
        while not stop.is_set():
            wait_s = (at_us - self.clock.now_us()) / S
            if wait_s <= 0:
                return True
            stop.wait(min(wait_s, 1.0))  # re-read the wall clock: NTP may step it
        return False

    def run(self, stop: threading.Event, ready_timeout: float = 60.0) -> None:
        """Start, play the day, keep heartbeating until `stop` is set, then shut down."""
        try:
            self.start(ready_timeout)
            taps = self.plan()
            log.info("simulating %d taps on %d kiosks", len(taps), len(self.kiosks))
            self.play(taps, stop)
            log.info("day played (%d taps); running until stopped", self.played)
            stop.wait()
        finally:
            self.stop()

    def stop(self) -> None:
        for sim in self.kiosks.values():
            sim.kiosk.stop()
