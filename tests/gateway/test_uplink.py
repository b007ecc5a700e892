"""The MQTT uplink against real Mosquitto: order, outages, refused publishes, heartbeat, will."""

from __future__ import annotations

import json
import multiprocessing
import os
import random
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from firmware_gateway.clock import SystemClock
from firmware_gateway.outbox import Outbox
from firmware_gateway.uplink import Uplink, UplinkTiming
from tests.support.mqtt_watch import Watcher, wait_until
from warmcard.command.servers import Mosquitto
from warmcard.contract import (
    DeviceConfig,
    DeviceStatus,
    Kind,
    Roster,
    config_topic,
    events_topic,
    parse_event,
    parse_model,
    roster_topic,
    status_topic,
)
from warmcard.settings import MqttSettings

UID = "04A1B2C3D4E5F6"
FAST = UplinkTiming(
    retry_rejected_s=0.3, backoff_min_s=0.05, backoff_max_s=0.4, idle_wait_s=0.2, drain_s=1.0
)


def make_uplink(
    tmp_path: Path, device: str, port: int, heartbeat_s: float = 30.0, **kw: object
) -> Uplink:
    clock = SystemClock()
    box = Outbox(tmp_path / f"{device}.sqlite", device, clock, min_free_bytes=0)
    return Uplink(
        device,
        MqttSettings(port=port, keepalive_s=5),
        box,
        clock,
        rng=random.Random(1),
        heartbeat_s=heartbeat_s,
        timing=FAST,
        **kw,  # type: ignore[arg-type]
    )


def tap(uplink: Uplink, n: int) -> list[int]:
    return [uplink.outbox.record(UID, Kind.CHECK_IN, person_id="p-1").seq for _ in range(n)]


def seqs(watcher: Watcher, device: str) -> list[int]:
    return [parse_event(m.payload, m.topic).seq for m in watcher.messages(events_topic(device))]


@pytest.fixture
def private_broker(tmp_path: Path) -> Iterator[Mosquitto]:
    with Mosquitto(tmp_path / "broker") as broker:
        yield broker


def test_events_arrive_in_order_once(
    tmp_path: Path, mosquitto: Mosquitto, topic_prefix: str
) -> None:
    device = f"{topic_prefix}-k1"
    watcher = Watcher(mosquitto.port, events_topic(device))
    uplink = make_uplink(tmp_path, device, mosquitto.port)
    try:
        tap(uplink, 20)
        uplink.start()
        assert uplink.wait_connected(10)
        tap(uplink, 100)  # more than the in-flight window, while running
        assert watcher.wait_for(lambda: len(seqs(watcher, device)) >= 120)
        assert wait_until(lambda: uplink.outbox.depth() == 0)
        time.sleep(0.2)  # a late duplicate would show up here
        assert seqs(watcher, device) == list(range(1, 121))
        assert uplink.stats.acked == 120
    finally:
        uplink.stop()
        watcher.close()


def test_taps_kept_while_broker_down_then_delivered(
    tmp_path: Path, private_broker: Mosquitto
) -> None:
    device = "k-outage"
    watcher = Watcher(private_broker.port, events_topic(device), persistent=True)
    uplink = make_uplink(tmp_path, device, private_broker.port)
    try:
        uplink.start()
        tap(uplink, 5)
        assert watcher.wait_for(lambda: len(seqs(watcher, device)) == 5)
        private_broker.stop()
        assert wait_until(lambda: not uplink.connected)
        tap(uplink, 10)
        time.sleep(0.5)  # several reconnect attempts fail meanwhile
        assert uplink.outbox.depth() == 10
        private_broker.start()
        assert watcher.wait_for(lambda: set(seqs(watcher, device)) == set(range(1, 16)), 15)
        assert wait_until(lambda: uplink.outbox.depth() == 0)
        assert uplink.stats.connects >= 2
    finally:
        uplink.stop()
        watcher.close()


def test_acl_refused_publish_stays_and_is_reported(tmp_path: Path) -> None:
    acl = tmp_path / "acl"
    acl.write_text("# anonymous clients may only read\ntopic read #\n")
    with Mosquitto(tmp_path / "acl-broker", extra_conf=f"acl_file {acl}") as broker:
        uplink = make_uplink(tmp_path, "k-denied", broker.port)
        try:
            uplink.start()
            tap(uplink, 2)
            assert wait_until(lambda: uplink.stats.rejected >= 2)
            rejections = uplink.outbox.rejected()
            assert {r.seq for r in rejections} <= {1, 2}
            assert all(r.code == 0x87 for r in rejections)
            assert uplink.outbox.depth() == 2  # never dropped
            assert uplink.outbox.last_seq() == 2
            # refused events are offered again (retry_rejected_s) and refused again
            assert wait_until(lambda: uplink.stats.rejected >= 4)
            status = uplink.build_status()
            assert status.outbox_depth == 2
            assert status.last_reject is not None and "0x87 Not authorized" in status.last_reject
            assert status.outbox_rejected is not None
        finally:
            uplink.stop()
    assert uplink.outbox.depth() == 2


def test_heartbeat_then_offline_on_clean_stop(
    tmp_path: Path, mosquitto: Mosquitto, topic_prefix: str
) -> None:
    device = f"{topic_prefix}-hb"
    watcher = Watcher(mosquitto.port, status_topic(device))
    ingest = Watcher(mosquitto.port, events_topic(device))  # someone must take the events
    uplink = make_uplink(tmp_path, device, mosquitto.port, heartbeat_s=0.2)
    tap(uplink, 3)
    uplink.start()

    def statuses() -> list[DeviceStatus]:
        return [parse_model(DeviceStatus, m.payload) for m in watcher.messages()]

    try:
        assert watcher.wait_for(lambda: len(statuses()) >= 3)
        beat = statuses()[-1]
        assert beat.state == "online"
        assert beat.last_seq == 3
        assert beat.outbox_depth == 0
        assert beat.disk_free_bytes is not None and beat.disk_free_bytes > 0
        assert beat.clock_synced is not None and beat.ts is not None
        assert watcher.messages()[-1].retain is False  # live delivery; retained for newcomers
    finally:
        uplink.stop()
    assert watcher.wait_for(lambda: statuses()[-1].state == "offline")
    assert statuses()[-1].ts is not None  # our own goodbye, not the will
    late = Watcher(mosquitto.port, status_topic(device))
    assert late.wait_for(lambda: len(late.messages()) == 1)
    assert late.messages()[0].retain
    late.close()
    watcher.close()
    ingest.close()


def test_event_that_reaches_no_subscriber_is_kept_and_sent_again(
    tmp_path: Path, private_broker: Mosquitto, topic_prefix: str
) -> None:
    """PUBACK 0x10 is a success code, but the event went nowhere: it must not leave the outbox."""
    # A private broker: on the shared one, other tests' persistent sessions subscribe to
    # every device's events.
    mosquitto = private_broker
    device = f"{topic_prefix}-nosub"
    uplink = make_uplink(tmp_path, device, mosquitto.port)
    seqs = tap(uplink, 2)
    uplink.start()
    try:
        assert wait_until(lambda: uplink.stats.no_subscribers >= 2)
        assert uplink.outbox.depth() == 2
        assert uplink.stats.acked == 0
        watcher = Watcher(mosquitto.port, events_topic(device))
        try:
            assert wait_until(lambda: uplink.outbox.depth() == 0, timeout=10)
            got = [parse_event(m.payload, m.topic).seq for m in watcher.messages()]
            assert got == seqs
        finally:
            watcher.close()
    finally:
        uplink.stop()


def _run_uplink(path: str, device: str, port: int) -> None:
    clock = SystemClock()
    box = Outbox(path, device, clock, min_free_bytes=0)
    Uplink(device, MqttSettings(port=port), box, clock, heartbeat_s=60).start()
    time.sleep(60)


def test_last_will_when_the_kiosk_dies(
    tmp_path: Path, mosquitto: Mosquitto, topic_prefix: str
) -> None:
    device = f"{topic_prefix}-will"
    watcher = Watcher(mosquitto.port, status_topic(device))
    ctx = multiprocessing.get_context("spawn")
    proc = ctx.Process(
        target=_run_uplink, args=(str(tmp_path / "o.sqlite"), device, mosquitto.port)
    )
    proc.start()
    try:
        assert watcher.wait_for(lambda: len(watcher.messages()) >= 1, 20)
        assert json.loads(watcher.messages()[0].payload)["state"] == "online"
    finally:
        assert proc.pid is not None
        os.kill(proc.pid, signal.SIGKILL)
        proc.join()
    assert watcher.wait_for(
        lambda: json.loads(watcher.messages()[-1].payload)["state"] == "offline"
    )
    will = parse_model(DeviceStatus, watcher.messages()[-1].payload)
    assert will.ts is None  # the broker's will, set at connect time
    watcher.close()


def test_downlink_config_and_roster_validated(
    tmp_path: Path, mosquitto: Mosquitto, topic_prefix: str
) -> None:
    device = f"{topic_prefix}-dl"
    configs: list[DeviceConfig] = []
    rosters: list[Roster] = []
    publisher = Watcher(mosquitto.port, f"{topic_prefix}/none")
    good = DeviceConfig(device_id=device, site_id="s-001", mode="canteen")  # type: ignore[arg-type]
    publisher.client.publish(
        config_topic(device), b"{not json", qos=1, retain=True
    ).wait_for_publish(5)
    uplink = make_uplink(
        tmp_path, device, mosquitto.port, on_config=configs.append, on_roster=rosters.append
    )
    try:
        uplink.start()
        assert wait_until(lambda: uplink.stats.bad_downlink == 1)
        publisher.client.publish(config_topic(device), good.to_bytes(), qos=1, retain=True)
        roster = Roster(site_id="s-001", version="3", entries=[])
        publisher.client.publish(roster_topic(device), roster.to_bytes(), qos=1, retain=True)
        assert wait_until(lambda: configs == [good] and rosters == [roster])
        assert uplink.connected  # the bad message did not hurt the connection
    finally:
        uplink.stop()
        for topic in (config_topic(device), roster_topic(device)):
            publisher.client.publish(topic, b"", qos=1, retain=True).wait_for_publish(5)
        publisher.close()
