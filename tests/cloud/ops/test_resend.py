# mypy: allow-untyped-defs
"""Resend on request: reconcile finds a gap, asks the kiosk, a real Kiosk re-publishes the range
through real Mosquitto into real InfluxDB, and reconcile is then clean."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from zoneinfo import ZoneInfo

import pytest
from typer.testing import CliRunner

from cloud_ingest.ops.reconcile import check
from cloud_ingest.ops.resend import commands_for
from cloud_ingest.pipeline.influx import InfluxV1
from firmware_gateway.clock import SystemClock
from firmware_gateway.readers.sim import SimReader
from firmware_gateway.settings import GatewaySettings
from firmware_gateway.uplink import UplinkTiming
from kiosk.policy import Outcome
from kiosk.runtime import Kiosk
from tests.support.ingest import (
    TZ,
    Publisher,
    make_settings,
    wait_for,
    write_ingest_toml,
    write_registry,
)
from tests.support.stack import Stack
from warmcard.command.cli import app
from warmcard.contract import (
    MAX_RESEND_RANGE,
    DeviceConfig,
    Kind,
    Mode,
    ResendCommand,
    command_topic,
)
from warmcard.localtime import day_window
from warmcard.settings import MqttSettings

FAST = UplinkTiming(backoff_min_s=0.05, backoff_max_s=0.4, idle_wait_s=0.2, drain_s=1.0)


class Shown:
    def __init__(self) -> None:
        self.outcomes: list[Outcome] = []

    def show(self, outcome: Outcome, message: str = "") -> None:
        self.outcomes.append(outcome)


@pytest.fixture
def rig(tmp_path, mosquitto, influxd, influx_db, topic_prefix) -> Iterator[tuple]:
    ids = write_registry(tmp_path, topic_prefix, all_day=True)  # a kiosk on the real clock
    settings = make_settings(tmp_path, mosquitto, influxd, influx_db, topic_prefix)
    gate = ids["gate_a"]
    service = Stack(settings)
    service.start()
    gateway = Kiosk(
        GatewaySettings(
            device_id=gate,
            data_dir=tmp_path / gate,
            mqtt=MqttSettings(port=mosquitto.port),
            heartbeat_s=0.3,
            screen_port=None,
            initial_config=DeviceConfig(device_id=gate, site_id=ids["site_a"], mode=Mode.ENTRANCE),
        ),
        SimReader(),
        Shown(),
        SystemClock(),
        rng=random.Random(5),
        timing=FAST,
        tick_s=0.1,
    )
    gateway.start()
    try:
        wait_for(service.consumer.subscribed.is_set)
        assert gateway.uplink.wait_connected(10)
        yield ids, settings, service, gateway
    finally:
        gateway.stop()
        service.stop()


def stored_seqs(settings, device: str) -> list[int]:
    storage = InfluxV1(settings.influx)
    try:
        series = storage.query(f'SELECT "seq" FROM "taps" WHERE "device" = \'{device}\'')
    finally:
        storage.close()
    return sorted(int(row[1]) for s in series for row in s.values)


def test_resend_command_fills_the_gap_reconcile_found(rig, tmp_path):
    ids, settings, service, gateway = rig
    gate = ids["gate_a"]
    events = [
        gateway.outbox.record(f"04A1B2{i:02X}", Kind.CHECK_IN, person_id=f"P000{i}")
        for i in range(1, 7)
    ]
    wait_for(lambda: stored_seqs(settings, gate) == [1, 2, 3, 4, 5, 6])
    wait_for(lambda: gateway.outbox.depth() == 0)
    # Acknowledged by the broker, then lost (as after a broker crash between snapshots): gone
    # from InfluxDB, while the kiosk holds them as delivered.
    storage = InfluxV1(settings.influx)
    storage.query(
        f'DELETE FROM "taps" WHERE "device" = \'{gate}\' '
        f"AND time >= '{events[2].ts}' AND time <= '{events[3].ts}'"
    )
    storage.close()
    assert stored_seqs(settings, gate) == [1, 2, 5, 6]
    wait_for(
        lambda: (
            (s := service.live.device_status(gate)) is not None
            and s.last_seq == 6
            and s.outbox_depth == 0
        )
    )
    day, _, _ = day_window(ZoneInfo(TZ), events[0].ts_us)

    config = str(write_ingest_toml(tmp_path, settings))
    runner = CliRunner()
    args = ["reconcile", "--config", config, "--device", gate, "--day", day, "--json"]
    found = runner.invoke(app, [*args, "--request-resend"])
    assert found.exit_code == 1, found.output
    doc = json.loads(found.stdout)
    assert [(g["from_seq"], g["to_seq"], g["state"]) for g in doc["devices"][0]["gaps"]] == [
        (3, 4, "missing")
    ]
    assert doc["devices"][0]["heartbeat"]["last_seq"] == 6
    [request] = doc["resend_requests"]
    assert (request["device_id"], request["from_seq"], request["to_seq"]) == (gate, 3, 4)

    wait_for(lambda: gateway.uplink.stats.resend_events == 2)
    wait_for(lambda: stored_seqs(settings, gate) == [1, 2, 3, 4, 5, 6])
    # The re-sent events are the same events: they pass conflict detection.
    assert service.metrics.dead_letters == {}
    report = check(
        service.query_storage,
        service.registry,
        [gate],
        day,
        statuses={gate: service.live.device_status(gate)},
        seen=service.seen,
    )
    assert report.clean and report.stored == {(gate, day): 6}
    again = runner.invoke(app, args)
    assert again.exit_code == 0, again.output
    assert json.loads(again.stdout)["clean"] is True


def test_kiosk_ignores_bad_and_repeated_commands(rig, mosquitto):
    ids, settings, _, gateway = rig
    gate = ids["gate_a"]
    for i in range(1, 4):
        gateway.outbox.record(f"04A1B2{i:02X}", Kind.CHECK_IN, person_id=f"P000{i}")
    wait_for(lambda: gateway.outbox.depth() == 0 and gateway.uplink.stats.acked == 3)
    publisher = Publisher(mosquitto.port)
    try:
        topic = command_topic(gate)
        too_wide = (
            b'{"v":1,"command":"resend","request_id":"r-1","device_id":"'
            + gate.encode()
            + b'","from_seq":1,"to_seq":'
            + str(MAX_RESEND_RANGE + 1).encode()
            + b"}"
        )
        other = ResendCommand(request_id="r-2", device_id=ids["gate_b"], from_seq=1, to_seq=3)
        for payload in (too_wide, other.to_bytes(), b"resend 1-3", b'{"v":2,"command":"resend"}'):
            publisher.publish_raw(topic, payload)
        wait_for(lambda: gateway.uplink.stats.bad_downlink == 4)
        assert gateway.uplink.stats.resend_requests == 0
        assert gateway.outbox.depth() == 0  # nothing put back in line

        good = ResendCommand(request_id="r-3", device_id=gate, from_seq=2, to_seq=3)
        publisher.publish_raw(topic, good.to_bytes())
        publisher.publish_raw(topic, good.to_bytes())  # a QoS 1 duplicate: done once
        wait_for(lambda: gateway.uplink.stats.acked == 5)
        wait_for(lambda: gateway.uplink.stats.resend_requests == 1)
        assert gateway.uplink.stats.resend_events == 2
        assert stored_seqs(settings, gate) == [1, 2, 3]  # re-sent points overwrite themselves
    finally:
        publisher.close()


def test_large_gaps_are_split_into_bounded_commands():
    from cloud_ingest.ops.reconcile import MISSING, Gap

    gap = Gap("k-1", 5, 5 + 2 * MAX_RESEND_RANGE, "2026-11-29", "2026-11-29", MISSING)
    commands = commands_for([gap, Gap("k-2", 1, 1, None, None, MISSING)], request_prefix="t")
    assert [(c.device_id, c.from_seq, c.to_seq) for c in commands] == [
        ("k-1", 5, 4 + MAX_RESEND_RANGE),
        ("k-1", 5 + MAX_RESEND_RANGE, 4 + 2 * MAX_RESEND_RANGE),
        ("k-1", 5 + 2 * MAX_RESEND_RANGE, 5 + 2 * MAX_RESEND_RANGE),
        ("k-2", 1, 1),
    ]
    assert len({c.request_id for c in commands}) == 4
