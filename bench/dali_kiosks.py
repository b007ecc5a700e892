"""The simulated kiosks of bench/dali_day.py: the planned day on wall time, as QoS 1 publishes.

Real: the contract's TapEvent bytes on `events_topic(device)`, QoS 1, per-device seqs, event
times at the moment of the tap, a held backlog sent at once when a kiosk's network comes back.
Simulated: a few publisher processes each carry many kiosks on one MQTT connection.
"""

from __future__ import annotations

import multiprocessing as mp
import threading
import time
import zlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from multiprocessing.sharedctypes import Synchronized
from typing import Any
from zoneinfo import ZoneInfo

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from bench.dali_seed import DAY_H, Tap
from warmcard.contract import Kind, MealPeriod, TapEvent, events_topic
from warmcard.timestamps import format_ts, new_event_id

TZ = ZoneInfo("Asia/Shanghai")


@dataclass(frozen=True)
class DayClock:
    """Site hours (07:00-18:00) mapped onto `minutes` of wall time from `t0` (time.time())."""

    t0: float
    minutes: float

    @property
    def speedup(self) -> float:
        return (DAY_H[1] - DAY_H[0]) * 3600 / (self.minutes * 60)

    def wall(self, hour: float) -> float:
        return self.t0 + (hour - DAY_H[0]) * 3600 / self.speedup

    def hour(self, wall: float) -> float:
        return DAY_H[0] + (wall - self.t0) * self.speedup / 3600

    def site_hours(self, margin_s: float = 60) -> dict[str, str]:
        """Opening hours and meal windows (sites.csv) around the compressed day, site time."""

        def hhmm(wall: float, up: bool) -> str:
            t = datetime.fromtimestamp(wall, TZ)
            if up and (t.second or t.microsecond):
                t += timedelta(minutes=1)
            return t.strftime("%H:%M")

        opening = hhmm(self.wall(DAY_H[0]) - margin_s, False)
        closing = hhmm(self.wall(DAY_H[1]) + margin_s, True)
        if closing <= opening:
            raise SystemExit("the compressed day would cross midnight (Asia/Shanghai): run later")
        cuts = [opening, hhmm(self.wall(10.0), False), hhmm(self.wall(14.5), False), closing]
        hours = {"opening": opening, "closing": closing}
        if len(set(cuts)) == 4:  # a window needs at least a minute: none on very short days
            hours |= {"breakfast": f"{cuts[0]}-{cuts[1]}", "lunch": f"{cuts[1]}-{cuts[2]}"}
            hours["dinner"] = f"{cuts[2]}-{cuts[3]}"
        return hours


@dataclass(frozen=True)
class Message:
    send_at: float  # wall time
    topic: str
    payload: bytes
    backlog: bool


def messages(taps: list[Tap], clock: DayClock) -> list[Message]:
    """Each tap as its kiosk publishes it: seqs in tap order, a duplicate as the same bytes."""
    seqs: dict[str, int] = {}
    last: dict[str, bytes] = {}
    last_ts: dict[str, int] = {}
    out = []
    for tap in taps:
        if tap.duplicate:
            payload = last[tap.device]
        else:
            seqs[tap.device] = seq = seqs.get(tap.device, 0) + 1
            # A kiosk's event times strictly increase (the point's identity relies on it), as
            # at closing, when it checks several people out at once.
            ts_us = max(int(clock.wall(tap.hour) * 1_000_000), last_ts.get(tap.device, 0) + 1000)
            last_ts[tap.device] = ts_us
            payload = TapEvent(
                event_id=new_event_id(ts_us),
                device_id=tap.device,
                seq=seq,
                ts=format_ts(ts_us),
                card_uid=tap.card,
                kind=Kind(tap.kind),
                meal_period=MealPeriod(tap.meal_period) if tap.meal_period else None,
                person_id=tap.person,
                auto=tap.auto,
                manual=tap.manual,
                witness_card=tap.witness,
            ).to_bytes()
            last[tap.device] = payload
        send_at = clock.wall(tap.send_hour)
        out.append(Message(send_at, events_topic(tap.device), payload, tap.send_hour != tap.hour))
    out.sort(key=lambda m: m.send_at)  # stable: a device's seqs stay in order
    return out


def connect(port: int, client_id: str) -> tuple[mqtt.Client, threading.Semaphore]:
    """A QoS 1 publisher with a window of unacknowledged messages, as the kiosk uplink keeps."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
    window = threading.Semaphore(1000)
    client.max_inflight_messages_set(1000)
    client.max_queued_messages_set(0)
    client.on_publish = lambda *a: window.release()
    client.connect("127.0.0.1", port)
    client.loop_start()
    return client, window


def publish(client: mqtt.Client, window: threading.Semaphore, m: Message) -> None:
    window.acquire()
    client.publish(m.topic, m.payload, qos=1)


def run_publisher(
    port: int,
    name: str,
    batch: list[Message],
    published: Synchronized[int],
    drains: Any,  # mp.Queue of (name, first, last, n, published at the end of the burst)
) -> None:
    """A child process: publish `batch` at its wall times; report the backlog burst."""
    client, window = connect(port, name)
    burst: list[float] = []
    i = 0
    while i < len(batch):
        m = batch[i]
        delay = m.send_at - time.time()
        if delay > 0:
            time.sleep(min(delay, 0.5))
            continue
        if m.backlog and not burst:
            burst.append(time.time())
        publish(client, window, m)
        with published.get_lock():
            published.value += 1
        i += 1
        ends_burst = burst and len(burst) == 1 and (i == len(batch) or not batch[i].backlog)
        if ends_burst:
            burst.append(time.time())
            drains.put(
                (name, burst[0], burst[1], sum(1 for x in batch if x.backlog), published.value)
            )
    for _ in range(1000):  # every publish acknowledged before the process ends
        window.acquire()
    client.loop_stop()
    client.disconnect()


def start_publishers(
    port: int, msgs: list[Message], n: int
) -> tuple[list[Any], list[Synchronized[int]], Any, int]:
    """`n` publisher processes, each carrying a share of the kiosks; also how many of them
    will report a backlog burst."""
    ctx = mp.get_context("spawn")
    drains = ctx.Queue()
    batches: list[list[Message]] = [[] for _ in range(n)]
    for m in msgs:
        batches[zlib.crc32(m.topic.encode()) % n].append(m)
    counters = [ctx.Value("q", 0) for _ in range(n)]
    procs = [
        ctx.Process(
            target=run_publisher,
            args=(port, f"dali-kiosks-{k}", batches[k], counters[k], drains),
            daemon=True,
        )
        for k in range(n)
    ]
    for p in procs:
        p.start()
    return procs, counters, drains, sum(any(m.backlog for m in b) for b in batches)
