"""The whole path on real parts, end to end.

SimReader → Kiosk (policy, SQLite outbox, MQTT 5 uplink) → Mosquitto → `warmcard ingest`
(a child process, as systemd runs it) → InfluxDB → the occupancy API.
"""

from __future__ import annotations

import random
import sqlite3
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from cloud_ingest.console.roles import Role
from cloud_ingest.pipeline.influx import InfluxV1
from cloud_ingest.pipeline.settings import InfluxSettings
from firmware_gateway.clock import ManualClock
from firmware_gateway.readers.sim import SimReader
from firmware_gateway.settings import GatewaySettings
from firmware_gateway.uplink import UplinkTiming
from kiosk import runtime
from kiosk.feedback import LogFeedback
from kiosk.policy import Outcome
from tests.faults.tcpproxy import TcpProxy
from tests.support.console import add_user, logged_in, place_sites
from tests.support.ingest import TZ, Publisher, wait_for, write_registry
from warmcard.command.servers import Console, InfluxD, Ingest, Mosquitto
from warmcard.contract import Kind, events_topic
from warmcard.localtime import day_window
from warmcard.settings import MqttSettings
from warmcard.timestamps import now_us

METRICS_TOKEN = "pipeline-metrics-token-0123456789"
FAST = UplinkTiming(backoff_min_s=0.05, backoff_max_s=0.5, idle_wait_s=0.1, drain_s=1.0)


def card(i: int) -> str:
    """The UID of person P000i in tests.support.ingest.write_registry."""
    return f"04A1B2{i:02X}"


@dataclass
class Kiosk:
    gateway: runtime.Kiosk
    reader: SimReader
    feedback: LogFeedback

    def tap(self, uid: str) -> Outcome:
        """Present and remove a card through the real reader loop; the kiosk's answer."""
        shown = len(self.feedback.shown)
        self.reader.tap(uid)
        wait_for(lambda: len(self.feedback.shown) > shown, timeout=10)
        return self.feedback.shown[-1][0]

    def committed_seqs(self) -> set[int]:
        with sqlite3.connect(self.gateway.settings.outbox_path) as conn:
            return {row[0] for row in conn.execute("SELECT seq FROM events")}


@dataclass
class Pipeline:
    tmp: Path
    broker: Mosquitto
    influx: InfluxD
    database: str
    ingest: Ingest
    console: Console
    ids: dict[str, str]
    clock: ManualClock
    kiosks: dict[str, Kiosk] = field(default_factory=dict)

    def storage(self) -> InfluxV1:
        return InfluxV1(InfluxSettings(url=self.influx.url, database=self.database))

    def counts(self) -> Counter[tuple[str, str]]:
        storage = self.storage()
        try:
            series = storage.query('SELECT count("seq") FROM "taps" GROUP BY "site", "kind"')
        finally:
            storage.close()
        return Counter({(s.tags["site"], s.tags["kind"]): s.values[0][1] for s in series})

    def stored_seqs(self, device: str) -> list[int]:
        """Every stored seq of a device, duplicates included (a double count would show)."""
        storage = self.storage()
        try:
            series = storage.query(f'SELECT "seq" FROM "taps" WHERE "device" = \'{device}\'')
        finally:
            storage.close()
        return [int(row[1]) for s in series for row in s.values]

    def all_delivered(self) -> bool:
        return all(
            sorted(self.stored_seqs(device)) == sorted(kiosk.committed_seqs())
            for device, kiosk in self.kiosks.items()
        )

    def occupancy(self) -> dict[str, dict[str, object]]:
        """The occupancy API as the prefecture's administrator sees it."""
        client = logged_in(self.console.url, "admin.dali")
        try:
            body = client.get("/api/v1/occupancy").json()
        finally:
            client.close()
        return {site["site_id"]: site for site in body["sites"]}

    def health(self) -> dict[str, Any]:
        """The ingest worker's /healthz with its details (metrics token)."""
        auth = {"Authorization": f"Bearer {METRICS_TOKEN}"}
        body: dict[str, Any] = httpx.get(f"{self.ingest.url}/healthz", headers=auth).json()
        return body

    def add_kiosk(self, key: str) -> Kiosk:
        device = self.ids[key]
        settings = GatewaySettings(
            device_id=device,
            data_dir=self.tmp / "kiosks" / device,
            mqtt=MqttSettings(port=self.broker.port),
            heartbeat_s=1.0,
            min_free_bytes=1024 * 1024,
        )
        reader = SimReader()
        feedback = LogFeedback()
        gateway = runtime.Kiosk(
            settings, reader, feedback, self.clock, rng=random.Random(1), timing=FAST, tick_s=0.1
        )
        gateway.start()
        kiosk = Kiosk(gateway, reader, feedback)
        self.kiosks[device] = kiosk
        assert gateway.wait_ready(30), f"{device} got no config and roster from ingest"
        return kiosk


@pytest.fixture
def pipeline(
    tmp_path: Path, influxd: InfluxD, influx_db: str, topic_prefix: str
) -> Iterator[Pipeline]:
    ids = write_registry(tmp_path, topic_prefix)
    # A manual kiosk clock lets tests step past the debounce window without sleeping. It starts
    # a few minutes back (never before today's local midnight) so the cloud never sees the
    # future, and today's live numbers count every tap; and no later than 17:00 local, before
    # the courtyards close (a kiosk checks everyone out by itself at closing time).
    now = now_us()
    _, midnight, _ = day_window(ZoneInfo(TZ), now)
    before_closing = midnight + 17 * 3600 * 1_000_000
    clock = ManualClock(max(midnight + 1_000_000, min(now - 240_000_000, before_closing)))
    console = tmp_path / "console.sqlite3"
    place_sites(
        console, {ids["site_a"]: "dali/dali-city/xizhou", ids["site_b"]: "dali/eryuan/niujie"}
    )
    add_user(console, "admin.dali", Role.ADMIN, "dali")
    broker = Mosquitto(tmp_path / "mosquitto")
    broker.start()
    # The two cloud roles as systemd runs them: `warmcard ingest` and `warmcard console`.
    shared: dict[str, Any] = {
        "broker": broker,
        "influx": influxd,
        "database": influx_db,
        "registry_path": tmp_path / "registry.sqlite3",
        "console_db": console,
        "deadletter_path": tmp_path / "deadletter.sqlite3",
        "metrics_token": METRICS_TOKEN,
        "extra_toml": "batch_ms = 50\nlive_resync_s = 3600\nsession_expiry_s = 600",
    }
    ingest = Ingest(tmp_path / "ingest", client_id=f"ingest-{topic_prefix}", **shared)
    console_proc = Console(tmp_path / "console", client_id=f"console-{topic_prefix}", **shared)
    console_proc.start(timeout=60)
    ingest.start(timeout=60)
    pipe = Pipeline(tmp_path, broker, influxd, influx_db, ingest, console_proc, ids, clock)
    try:
        yield pipe
    finally:
        for kiosk in pipe.kiosks.values():
            kiosk.gateway.stop()
        ingest.stop()
        console_proc.stop()
        broker.stop()


def test_taps_at_two_sites_arrive_with_exact_counts_and_occupancy(pipeline: Pipeline) -> None:
    gate_a, canteen_a = pipeline.add_kiosk("gate_a"), pipeline.add_kiosk("canteen_a")
    gate_b = pipeline.add_kiosk("gate_b")
    answers = [gate_a.tap(card(i)) for i in (1, 2, 3)]
    answers.append(gate_a.tap("04998877"))  # not on any roster
    answers += [canteen_a.tap(card(1)), canteen_a.tap(card(3))]
    answers += [gate_b.tap(card(7)), gate_b.tap(card(8))]
    pipeline.clock.advance(11)  # past both debounce windows (10 s gate, 5 s canteen)
    answers += [gate_a.tap(card(2)), canteen_a.tap(card(1))]
    assert answers == [Outcome.SUCCESS] * 3 + [Outcome.UNKNOWN] + [Outcome.SUCCESS] * 5 + [
        Outcome.MEAL_REPEAT
    ]

    a, b = pipeline.ids["site_a"], pipeline.ids["site_b"]
    expected = Counter(
        {
            (a, "check_in"): 3,
            (a, "check_out"): 1,
            (a, "unknown_card"): 1,
            (a, "meal"): 2,
            (a, "meal_repeat"): 1,
            (b, "check_in"): 2,
        }
    )
    wait_for(lambda: pipeline.counts() == expected, timeout=30)
    assert pipeline.all_delivered()

    def occupancy_matches() -> bool:
        sites = pipeline.occupancy()
        return (
            sites[a]["present"],
            sites[a]["arrivals"],
            sites[a]["meals_total"],
            sites[a]["meal_repeats"],
            sites[a]["unknown_cards"],
            sites[b]["present"],
            sites[b]["arrivals"],
        ) == (2, 3, 2, 1, 1, 2, 2)

    wait_for(occupancy_matches, timeout=10)


def test_events_delivered_three_times_leave_every_count_unchanged(pipeline: Pipeline) -> None:
    gate_a = pipeline.add_kiosk("gate_a")
    for i in range(1, 7):
        gate_a.tap(card(i))
    wait_for(pipeline.all_delivered, timeout=30)
    before = pipeline.counts()
    occupancy_before = pipeline.occupancy()[pipeline.ids["site_a"]]["present"]

    outbox = gate_a.gateway.outbox
    for _ in range(3):
        assert outbox.resend(1, outbox.last_seq()) == 6
        wait_for(lambda: outbox.depth() == 0, timeout=30)
    # The resent events went through the broker and ingest again; wait for the last batch.
    wait_for(lambda: pipeline.health()["pending"] == 0)
    assert pipeline.counts() == before
    assert sorted(pipeline.stored_seqs(gate_a.gateway.settings.device_id)) == list(range(1, 7))
    assert pipeline.occupancy()[pipeline.ids["site_a"]]["present"] == occupancy_before == 6


def test_taps_made_while_the_broker_is_down_are_kept_then_arrive_once(pipeline: Pipeline) -> None:
    gate_b = pipeline.add_kiosk("gate_b")
    pipeline.broker.stop()
    wait_for(lambda: not gate_b.gateway.uplink.connected, timeout=10)
    answers = []
    for _ in range(3):  # in, out, in for four elders: 12 taps, all offline
        answers += [gate_b.tap(card(i)) for i in (7, 8, 9, 10)]
        pipeline.clock.advance(11)
    assert answers == [Outcome.SUCCESS] * 12  # offline makes no difference to the kiosk
    assert gate_b.gateway.outbox.depth() == 12

    pipeline.broker.start()
    wait_for(pipeline.all_delivered, timeout=60)
    b = pipeline.ids["site_b"]
    wait_for(lambda: pipeline.counts() == Counter({(b, "check_in"): 8, (b, "check_out"): 4}))
    assert gate_b.gateway.outbox.depth() == 0


def test_ingest_killed_mid_stream_loses_and_doubles_nothing(pipeline: Pipeline) -> None:
    # Small batches to an InfluxDB 50 ms away: the stream lasts seconds, so the kill lands in
    # the middle of it however fast the machine is.
    with TcpProxy(pipeline.influx.port) as slow_influx:
        slow_influx.latency_s = 0.05
        pipeline.ingest.stop()
        pipeline.ingest.influx_url = f"http://127.0.0.1:{slow_influx.port}"
        pipeline.ingest.extra_toml += "\nbatch_max = 100"
        pipeline.ingest.start(timeout=60)
        kiosks = [pipeline.add_kiosk(key) for key in ("gate_a", "gate_b")]
        # Volume straight into the outboxes (the kiosk's durable log); the uplinks drain them.
        for n in range(1500):
            for k, kiosk in enumerate(kiosks):
                i = 1 + (n % 6) if k == 0 else 7 + (n % 4)
                kiosk.gateway.outbox.record(card(i), Kind.CHECK_IN, person_id=f"P{i:04d}")
            pipeline.clock.advance(0.001)
        wait_for(lambda: sum(pipeline.counts().values()) >= 300, timeout=60)
        pipeline.ingest.kill()
        stored_at_kill = sum(pipeline.counts().values())
        assert stored_at_kill < 3000, "the kill should land mid-stream"
        pipeline.ingest.start(timeout=60)
        wait_for(pipeline.all_delivered, timeout=120)
    a, b = pipeline.ids["site_a"], pipeline.ids["site_b"]
    assert pipeline.counts() == Counter({(a, "check_in"): 1500, (b, "check_in"): 1500})


def test_malformed_payload_is_dead_lettered_and_later_taps_still_arrive(
    pipeline: Pipeline,
) -> None:
    gate_a = pipeline.add_kiosk("gate_a")
    publisher = Publisher(pipeline.broker.port)
    try:
        topic = events_topic(pipeline.ids["gate_a"])
        for payload in (b"{not json", b"", b'{"v":1,"seq":"1"}', "名字".encode("gbk")):
            publisher.publish_raw(topic, payload)
    finally:
        publisher.close()
    gate_a.tap(card(1))
    gate_a.tap(card(2))
    a = pipeline.ids["site_a"]
    wait_for(lambda: pipeline.counts() == Counter({(a, "check_in"): 2}), timeout=30)
    health = pipeline.health()
    assert health["status"] == "ok"
    dead = health["metrics"]["dead_letters"]
    assert sum(dead.values()) == 4
    assert {"invalid_json", "empty", "not_utf8"} <= set(dead)
