"""Failover on the real parts (issue 11): two `warmcard ingest` workers and two `warmcard console`
instances on one store, Mosquitto and InfluxDB, under a steady 500 taps/s from simulated kiosks.

One worker and one console are killed with SIGKILL and restarted, then the other worker is
killed and restarted. Afterwards every tap is stored exactly once (per device, InfluxDB's seqs
equal the published set), both consoles' live meal counts equal InfluxDB's within 2 s of the
last tap, and a browser session logged in on the first console keeps working on the second
while the first is dead, and on the first again once it is back.

Run on both backends: PostgreSQL (the multi-machine deployment: every store in one database)
and SQLite (one machine: the same four processes sharing files).
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser

from cloud_ingest.console.roles import Role
from cloud_ingest.pipeline.influx import InfluxV1
from cloud_ingest.pipeline.settings import InfluxSettings
from tests.support.console import add_user, browser_login, logged_in, place_sites
from tests.support.databases import StoreAt
from tests.support.ingest import TZ, EventMaker, Publisher, import_registry_csv, wait_for
from warmcard.command.servers import Console, InfluxD, Ingest, Mosquitto
from warmcard.contract import Kind, MealPeriod, TapEvent

RATE = 500  # taps per second, all kiosks together
DURATION_S = 20.0
CANTEENS = 10  # five per site
PEOPLE = 20  # per site
METRICS_TOKEN = "failover-metrics-token-0123456789"


@dataclass
class Deployment:
    tmp: Path
    broker: Mosquitto
    influxd: InfluxD
    database: str
    store_at: StoreAt
    prefix: str
    workers: list[Ingest] = field(default_factory=list)
    consoles: list[Console] = field(default_factory=list)

    @property
    def sites(self) -> list[str]:
        return [f"{self.prefix}-site-a", f"{self.prefix}-site-b"]

    def canteen(self, n: int) -> str:
        return f"{self.prefix}-canteen-{n}"

    def site_of_canteen(self, n: int) -> str:
        return self.sites[n % 2]

    def person(self, n: int, i: int) -> str:
        """Person i of canteen n's site."""
        return f"P{(n % 2) * PEOPLE + i + 1:04d}"

    def write_registry(self) -> None:
        a, b = self.sites
        (self.tmp / "sites.csv").write_text(
            "site_id,name_zh,name_en,tz,capacity,opening,closing,breakfast,lunch,dinner\n"
            f"{a},喜洲幸福食堂,Xizhou canteen,{TZ},80,00:00,23:59,,,\n"
            f"{b},周城幸福食堂,Zhoucheng canteen,{TZ},80,00:00,23:59,,,\n",
            encoding="utf-8",
        )
        devices = ["device_id,site_id,mode,debounce_s"]
        devices += [
            f"{self.canteen(n)},{self.site_of_canteen(n)},canteen,0" for n in range(CANTEENS)
        ]
        (self.tmp / "devices.csv").write_text("\n".join(devices) + "\n", encoding="utf-8")
        people = ["person_id,display_name,site_id"]
        cards = ["card_uid,person_id,active"]
        for i in range(1, 2 * PEOPLE + 1):
            people.append(f"P{i:04d},长者{i},{a if i <= PEOPLE else b}")
            cards.append(f"04:A1:B2:{i:02X},P{i:04d},1")
        (self.tmp / "people.csv").write_text("\n".join(people) + "\n", encoding="utf-8")
        (self.tmp / "cards.csv").write_text("\n".join(cards) + "\n", encoding="utf-8")
        import_registry_csv(
            self.store_at("registry"), self.tmp, "sites", "devices", "people", "cards"
        )

    def process_options(self) -> dict[str, Any]:
        shared: dict[str, Any] = {
            "broker": self.broker,
            "influx": self.influxd,
            "database": self.database,
            "metrics_token": METRICS_TOKEN,
            "extra_toml": "batch_ms = 50\nsession_expiry_s = 600\nlive_resync_s = 3600",
        }
        location = self.store_at("registry")
        if isinstance(location, str):  # PostgreSQL: every store in the one database
            shared["database_url"] = location
        else:  # one machine: the same files for every process
            shared |= {
                "registry_path": self.store_at("registry"),
                "console_db": self.store_at("console"),
                "deadletter_path": self.store_at("deadletters"),
            }
        return shared

    def start(self) -> None:
        shared = self.process_options()
        for n in (1, 2):
            worker = Ingest(self.tmp / f"ingest-{n}", client_id=f"ingest-{n}", **shared)
            console = Console(self.tmp / f"console-{n}", client_id=f"console-{n}", **shared)
            self.workers.append(worker)
            self.consoles.append(console)
        for proc in [*self.consoles, *self.workers]:
            proc.start(timeout=60)

    def stop(self) -> None:
        for proc in [*self.workers, *self.consoles]:
            proc.stop()

    # ---------------------------------------------------------------- what each side holds

    def influx(self) -> InfluxV1:
        return InfluxV1(InfluxSettings(url=self.influxd.url, database=self.database))

    def stored_seqs(self) -> dict[str, list[int]]:
        storage = self.influx()
        try:
            series = storage.query('SELECT "seq" FROM "taps" GROUP BY "device"')
        finally:
            storage.close()
        return {s.tags["device"]: [int(row[1]) for row in s.values] for s in series}

    def influx_meals(self) -> Counter[str]:
        storage = self.influx()
        try:
            series = storage.query(
                'SELECT count("seq") FROM "taps" WHERE "kind" = \'meal\' GROUP BY "site"'
            )
        finally:
            storage.close()
        return Counter({s.tags["site"]: int(s.values[0][1]) for s in series})

    def console_meals(self, console: Console) -> Counter[str]:
        client = logged_in(console.url, "admin.dali")
        try:
            sites = client.get("/api/v1/occupancy").json()["sites"]
        finally:
            client.close()
        return Counter({s["site_id"]: int(s["meals_total"] or 0) for s in sites})


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


def _time_until(predicate: Any, timeout: float, explain: Any = None) -> float:
    start = time.monotonic()
    try:
        wait_for(predicate, timeout=timeout, interval=0.05)
    except AssertionError:
        raise AssertionError(explain() if explain else "timed out") from None
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

    figures["InfluxDB complete after last tap (s)"] = _time_until(
        lambda: (
            {k: sorted(v) for k, v in d.stored_seqs().items()}
            == {k: sorted(v) for k, v in published.items()}
        ),
        60,
    )
    stored = d.stored_seqs()
    doubled = {k: len(v) - len(set(v)) for k, v in stored.items() if len(v) != len(set(v))}
    lost = {k: len(published[k] - set(stored.get(k, []))) for k in published}
    assert not doubled, f"taps stored twice: {doubled}"
    assert not any(lost.values()), f"taps lost: {lost}"

    want = d.influx_meals()
    assert sum(want.values()) == total
    for console in (c1, c2):
        figures[f"{console.client_id} equals InfluxDB after last tap (s)"] = (
            time.monotonic() - kiosks.last_tap_at
        ) + _time_until(
            lambda c=console: d.console_meals(c) == want,
            30,
            lambda c=console: f"{c.client_id}: {d.console_meals(c)} != InfluxDB {want}",
        )
    print(f"\nfailover, {total} taps at {RATE}/s:", {k: round(v, 2) for k, v in figures.items()})
    for console in (c1, c2):
        assert figures[f"{console.client_id} equals InfluxDB after last tap (s)"] <= 2.0
    assert not [e for e in page.errors if "/login" in e]  # type: ignore[attr-defined]
