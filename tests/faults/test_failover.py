"""Failover on the real parts (issue 11): two `warmcard ingest` workers and two `warmcard console`
instances on one store, Mosquitto and InfluxDB, under a steady 500 taps/s from simulated kiosks.

One worker and one console are killed with SIGKILL and restarted, then the other worker is
killed and restarted. Afterwards every tap is stored exactly once (per device, InfluxDB's seqs
equal the published set), both consoles' live meal counts equal InfluxDB's within 2 s of the
last tap (of InfluxDB holding every tap, when a loaded machine stores later), and a browser
session logged in on the first console keeps working on the second while the first is dead,
and on the first again once it is back.

Run on both backends: PostgreSQL (the multi-machine deployment: every store in one database)
and SQLite (one machine: the same four processes sharing files).
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser

from cloud_ingest.console.roles import Role
from tests.faults.deployment import CANTEENS, PEOPLE, Deployment
from tests.support.console import add_user, browser_login, place_sites
from tests.support.databases import StoreAt
from tests.support.ingest import EventMaker, Publisher, wait_for
from warmcard.command.servers import InfluxD, Mosquitto
from warmcard.contract import Kind, MealPeriod, TapEvent

RATE = 500  # taps per second, all kiosks together
DURATION_S = 20.0


class Kiosks:
    """Simulated canteen kiosks: QoS 1 publishes at a steady total rate, as kiosk uplinks make
    them; `published` holds every event the broker acknowledged."""

    def __init__(self, deployment: Deployment) -> None:
        self.d = deployment
        self.makers = [EventMaker(deployment.canteen(n)) for n in range(CANTEENS)]
        self.publisher = Publisher(deployment.broker.port)
        self.published: dict[str, set[int]] = {m.device_id: set() for m in self.makers}
        self.last_tap_at = 0.0
        self._thread = threading.Thread(target=self._run, name="kiosks", daemon=True)
        self.error: BaseException | None = None

    def _event(self, count: int) -> TapEvent:
        n = count % CANTEENS
        person = self.d.person(n, (count // CANTEENS) % PEOPLE)
        return self.makers[n].make(Kind.MEAL, person, MealPeriod.LUNCH)

    def _run(self) -> None:
        try:
            start = time.monotonic()
            sent = 0
            pending = []
            while (elapsed := time.monotonic() - start) < DURATION_S:
                due = int(elapsed * RATE)
                while sent < due:
                    event = self._event(sent)
                    pending.append((event, self.publisher.publish_async(event)))
                    sent += 1
                time.sleep(0.01)
            for event, info in pending:
                info.wait_for_publish(60)
                self.published[event.device_id].add(event.seq)
            self.last_tap_at = time.monotonic()
        except BaseException as exc:  # reported by join()
            self.error = exc

    def start(self) -> None:
        self._thread.start()

    def join(self) -> None:
        self._thread.join(DURATION_S + 120)
        self.publisher.close()
        if self.error is not None:
            raise self.error


@pytest.fixture
def deployment(
    tmp_path: Path, store_at: StoreAt, influxd: InfluxD, influx_db: str
) -> Iterator[Deployment]:
    prefix = f"fo{uuid.uuid4().hex[:6]}"
    broker = Mosquitto(tmp_path / "mosquitto")
    broker.start()
    d = Deployment(tmp_path, broker, influxd, influx_db, store_at, prefix)
    d.write_registry()
    a, b = d.sites
    place_sites(store_at("console"), {a: "dali/dali-city/xizhou", b: "dali/dali-city/zhoucheng"})
    add_user(store_at("console"), "admin.dali", Role.ADMIN, "dali")
    try:
        d.start()
        yield d
    finally:
        d.stop()
        broker.stop()


def _time_until(predicate: Any, timeout: float) -> float:
    start = time.monotonic()
    wait_for(predicate, timeout=timeout, interval=0.05)
    return time.monotonic() - start


def test_killing_workers_and_a_console_under_500_taps_per_second_loses_and_doubles_nothing(
    deployment: Deployment, browser: Browser
) -> None:
    d = deployment
    w1, w2 = d.workers
    c1, c2 = d.consoles
    page = browser_login(browser, c1.url, "admin.dali", path="/")
    kiosks = Kiosks(d)
    kiosks.start()
    figures: dict[str, float] = {}

    time.sleep(5)
    w1.kill()
    c1.kill()
    # The console is dead: the same browser session goes on at the other instance.
    page.goto(c2.url + "/")
    assert "/login" not in page.url, "the session was not shared with the second console"
    page.wait_for_selector("h1")
    time.sleep(3)
    w1.start(timeout=60)
    c1.start(timeout=60)
    influx_at_restart = sum(d.influx_meals().values())
    figures["c1 caught up after restart (s)"] = _time_until(
        lambda: sum(d.console_meals(c1).values()) >= influx_at_restart, 30
    )
    page.goto(c1.url + "/")
    assert "/login" not in page.url, "the session did not survive the console's restart"
    time.sleep(2)
    w2.kill()
    time.sleep(3)
    w2.start(timeout=60)

    kiosks.join()
    published = kiosks.published
    total = sum(len(s) for s in published.values())
    assert total >= RATE * DURATION_S * 0.95, f"only {total} taps published"

    # From the last tap on: when does each console's count equal InfluxDB's, all taps in?
    matched: dict[str, float] = {}
    deadline = time.monotonic() + 60
    while len(matched) < 2 and time.monotonic() < deadline:
        want = d.influx_meals()
        if sum(want.values()) == total:
            figures.setdefault(
                "InfluxDB complete after last tap (s)", time.monotonic() - kiosks.last_tap_at
            )
            for console in (c1, c2):
                if console.client_id not in matched and d.console_meals(console) == want:
                    matched[console.client_id] = time.monotonic() - kiosks.last_tap_at
        time.sleep(0.05)
    for console in (c1, c2):
        assert console.client_id in matched, (
            f"{console.client_id}: {d.console_meals(console)} != InfluxDB {d.influx_meals()}"
        )
        figures[f"{console.client_id} equals InfluxDB after last tap (s)"] = matched[
            console.client_id
        ]

    stored = d.stored_seqs()
    doubled = {k: len(v) - len(set(v)) for k, v in stored.items() if len(v) != len(set(v))}
    lost = {k: len(published[k] - set(stored.get(k, []))) for k in published}
    assert not doubled, f"taps stored twice: {doubled}"
    assert not any(lost.values()), f"taps lost: {lost}"
    print(f"\nfailover, {total} taps at {RATE}/s:", {k: round(v, 2) for k, v in figures.items()})
    # The goal is 2 s from the last tap (0.12-0.27 s on an idle 2-core machine, docs/benchmarks.md).
    # On a loaded machine InfluxDB itself may complete later than that; what the consoles add
    # after it is what they answer for, so that is held to the 2 s.
    complete = figures["InfluxDB complete after last tap (s)"]
    for console in (c1, c2):
        lag = figures[f"{console.client_id} equals InfluxDB after last tap (s)"] - complete
        assert lag <= 2.0, f"{console.client_id} matched InfluxDB {lag:.2f} s after it was complete"
    assert not [e for e in page.errors if "/login" in e]  # type: ignore[attr-defined]
