"""An unconsumed share of the event stream raises an alert (issue #9, item 1), on real Mosquitto.

A member of ingest's shared subscription that stopped keeps its persistent session, and the
broker goes on giving it its share: those taps are acknowledged to the kiosk and stored nowhere.
Before: nothing noticed until someone ran reconcile (no alert kind existed for it).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from cloud_ingest.alerts.models import Kind
from cloud_ingest.alerts.settings import AlertSettings
from cloud_ingest.worker import IngestWorker
from tests.support.ingest import EventMaker, Publisher, make_settings, wait_for, write_registry
from tests.support.mqtt_client import Client
from tests.support.stack import Stack
from warmcard.command.servers import InfluxD, Mosquitto
from warmcard.contract import EVENTS_FILTER, DeviceStatus, shared_subscription, status_topic
from warmcard.contract import Kind as TapKind
from warmcard.timestamps import format_ts, now_us

pytestmark = pytest.mark.servers
US = 1_000_000


def settles(predicate: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def test_a_stopped_member_of_the_share_group_raises_then_clears_an_alert(
    tmp_path: Path, mosquitto: Mosquitto, influxd: InfluxD, influx_db: str, topic_prefix: str
) -> None:
    ids = write_registry(tmp_path, topic_prefix)
    gate = ids["gate_a"]
    offset = [0]

    def clock() -> int:
        return now_us() + offset[0]

    settings = make_settings(
        tmp_path,
        mosquitto,
        influxd,
        influx_db,
        topic_prefix,
        alerts=AlertSettings(heartbeat_alarm_s=3600, evaluate_s=3600),
    )
    # A second worker joined the group once, then stopped: its session keeps getting its share.
    ghost_id = f"ingest-{topic_prefix}-2"
    ghost = Client(None, None, client_id=ghost_id)
    ghost.connect(mosquitto.port, clean_start=False)
    ghost.subscribe(shared_subscription(settings.share_group, EVENTS_FILTER))
    ghost.close()
    publisher = Publisher(mosquitto.port)
    try:
        with Stack(settings, clock=clock) as stack:
            maker = EventMaker(gate)
            # One tap at a time, until one was stored and a later one went to the stopped
            # member (the broker takes the group's members in turn).
            for _ in range(8):
                stored = stack.worker_metrics.stored
                publisher.publish([maker.make(TapKind.CHECK_IN, "P0001")])
                got = settles(lambda s=stored: stack.worker_metrics.stored > s, 1.5)  # type: ignore[misc]
                if not got and stack.worker_metrics.stored:
                    break
            lost = maker.seq
            assert stack.console.live.stored_seqs().get(gate, 0) < lost
            # The kiosk's heartbeat: everything up to `lost` acknowledged, outbox empty.
            status = DeviceStatus(
                device_id=gate,
                state="online",
                ts=format_ts(now_us()),
                last_seq=lost,
                outbox_depth=0,
                clock_synced=True,
            )
            publisher.publish_raw(status_topic(gate), status.to_bytes(), retain=True)
            live = stack.console.live
            wait_for(lambda: (s := live.device_status(gate)) is not None and s.last_seq == lost)
            engine = stack.console.alerts
            engine.evaluate_devices(clock())
            assert gate not in engine.store.open_subjects(Kind.EVENTS_UNSTORED)  # not yet
            offset[0] = 301 * US
            engine.evaluate_devices(clock())
            assert gate in engine.store.open_subjects(Kind.EVENTS_UNSTORED)
            found = engine.store.find([""], kinds=[Kind.EVENTS_UNSTORED])[0]
            detail = found.detail_zh
            assert f"已确认至 {lost} 号" in detail
            # The stopped worker comes back: it stores its queued share, the alert clears.
            back = IngestWorker(settings.model_copy(update={"client_id": ghost_id}), clock=clock)
            back.start()
            try:
                wait_for(lambda: live.stored_seqs().get(gate, 0) >= lost)
                engine.evaluate_devices(clock())
                assert gate not in engine.store.open_subjects(Kind.EVENTS_UNSTORED)
            finally:
                back.stop()
    finally:
        publisher.publish_raw(status_topic(gate), b"", retain=True)
        publisher.close()
