"""Broker, ingest and InfluxDB failures: held back, re-sent, stored once."""

from __future__ import annotations

import os
import signal
import time

import pytest

from cloud_ingest.pipeline.settings import InfluxSettings
from tests.faults.pipeline import Pipeline, health, wait_until
from warmcard.timestamps import now_us


def test_ingest_killed_before_writing_and_after_writing_before_acking(pipeline: Pipeline) -> None:
    """6. SIGKILL of `warmcard ingest` holding a batch it could not write, then one it wrote but
    had not yet acked (timed by the InfluxDB link itself: no hook in the product)."""
    influx_link = pipeline.new_proxy(pipeline.influxd.port)
    ingest = pipeline.ingest_process(influx_url=f"http://127.0.0.1:{influx_link.port}")
    gate = pipeline.kiosk("gate_a")
    gate.tap(10)
    gate.wait_sent()
    pipeline.check()

    # Before writing: InfluxDB unreachable, the batch is received and held unacked; kill.
    influx_link.cut()
    gate.tap(40)
    gate.wait_sent()  # the broker has them

    # Ingest has received them and is retrying the write.
    def held() -> int:
        now = health(ingest)
        return int(now["metrics"]["received"]) + int(now["pending"])

    wait_until(lambda: held() >= 50)
    status = health(ingest)
    assert status["metrics"]["write_retries"] > 0 and status["metrics"]["acked"] == 10
    assert len(pipeline.stored(gate.device_id)) == 10
    ingest.kill()
    influx_link.restore()
    ingest.start()
    pipeline.check()

    # After writing, before acking: InfluxDB's "204 No Content" is the moment the points are
    # stored; ingest is killed as that answer passes, so the PUBACKs are never sent.
    assert ingest.proc is not None
    pid = ingest.proc.pid

    def kill_on_write_answer(chunk: bytes) -> bool:
        if chunk.startswith(b"HTTP/1.1 204"):
            os.kill(pid, signal.SIGKILL)
            return True
        return False

    influx_link.cut_when(kill_on_write_answer)
    gate.tap(40)
    wait_until(lambda: not influx_link.armed)
    ingest.kill()
    stored = len(pipeline.stored(gate.device_id))
    assert stored > 50  # written...
    ingest.start()  # ...and redelivered by the broker, overwriting themselves
    assert pipeline.check() == 90


@pytest.mark.slow
def test_two_workers_one_killed_mid_stream(pipeline: Pipeline) -> None:
    """8. Two `warmcard ingest` workers share the subscription; one is SIGKILLed mid-stream,
    the other keeps storing; the killed one is restarted (as systemd does) and its unacked
    messages, kept in its persistent session, arrive."""
    one = pipeline.ingest_process("ingest-1")
    pipeline.ingest_process("ingest-2")
    gate, canteen, gate_b = (pipeline.kiosk(k) for k in ("gate_a", "canteen_a", "gate_b"))
    for _ in range(10):
        for kiosk in (gate, canteen, gate_b):
            kiosk.tap(10, wait=False)
        time.sleep(0.1)
    one.kill()
    during = sum(len(pipeline.stored(k.device_id)) for k in (gate, canteen, gate_b))
    for _ in range(10):
        for kiosk in (gate, canteen, gate_b):
            kiosk.tap(10, wait=False)
        time.sleep(0.1)
    for kiosk in (gate, canteen, gate_b):
        kiosk.wait_sent()
    # The survivor kept storing while its partner was dead.
    wait_until(
        lambda: (
            sum(len(pipeline.stored(k.device_id)) for k in (gate, canteen, gate_b)) > during + 100
        )
    )
    one.start()
    assert pipeline.check(timeout=60) == 600


@pytest.mark.slow
def test_broker_killed_with_messages_queued_for_ingest(pipeline: Pipeline) -> None:
    """5. Broker SIGKILL while events wait in ingest's persistent session. Mosquitto saves its
    state only every autosave_interval, so acknowledged messages can die with it; the kiosk's
    outbox keeps acknowledged events and re-sends the range the gap check finds."""
    service = pipeline.start_ingest()
    gate, canteen = pipeline.kiosk("gate_a"), pipeline.kiosk("canteen_a")
    gate.tap(10)
    gate.wait_sent()
    pipeline.check()
    service.stop()  # ingest away; its session (and subscription) stays on the broker
    pipeline.services.remove(service)
    gate.tap(150)
    canteen.tap(150)
    gate.wait_sent()
    canteen.wait_sent()  # PUBACKed by the broker: the kiosks consider them delivered
    pipeline.broker.kill()
    pipeline.broker.start()
    pipeline.start_ingest()
    time.sleep(2.0)
    gaps = pipeline.gaps()
    lost = sum(len(g) for g in gaps.values())
    # The test broker saves every second; whatever was lost or not, the gap check finds it.
    for kiosk in (gate, canteen):
        gap = gaps[kiosk.device_id]
        if gap:
            assert kiosk.gateway.outbox.resend(gap[0], gap[-1]) >= len(gap)
            kiosk.gateway.uplink.wake()
    for kiosk in (gate, canteen):
        kiosk.wait_sent()
    print(f"events lost by the broker crash and re-sent from the outboxes: {lost}")
    assert pipeline.check() == 310


def test_broker_crash_loses_acknowledged_events_outbox_resend_covers_it(
    pipeline: Pipeline,
) -> None:
    """5b. The crash window made certain: a broker that never autosaves in time is killed with
    300 acknowledged events queued; they are gone from the broker, and resend covers them."""
    pipeline.broker.stop()
    pipeline.broker.extra_conf = "autosave_interval 3600\n"
    pipeline.broker.start()
    service = pipeline.start_ingest()
    gate = pipeline.kiosk("gate_a")
    gate.tap(5)
    gate.wait_sent()
    pipeline.check()
    service.stop()
    pipeline.services.remove(service)
    gate.tap(300)
    gate.wait_sent()
    pipeline.broker.kill()
    pipeline.broker.start()
    pipeline.start_ingest()
    time.sleep(2.0)
    gap = pipeline.gaps()[gate.device_id]
    assert gap == list(range(6, 306))  # all acknowledged, all lost by the broker
    assert gate.gateway.outbox.resend(gap[0], gap[-1]) == 300
    gate.gateway.uplink.wake()
    gate.wait_sent()
    assert pipeline.check() == 305


@pytest.mark.slow
def test_influxdb_down_then_slow_ingest_holds_back(pipeline: Pipeline) -> None:
    """7. InfluxDB unreachable for 5 s, then slow (200 ms each way): ingest acks nothing it has
    not stored, the broker stops at ReceiveMaximum, nothing is dropped."""
    influx_link = pipeline.new_proxy(pipeline.influxd.port)
    service = pipeline.start_ingest(
        influx=InfluxSettings(
            url=f"http://127.0.0.1:{influx_link.port}", database=pipeline.db, timeout_s=5
        ),
        receive_maximum=100,
        batch_max=40,
    )
    gate, canteen = pipeline.kiosk("gate_a"), pipeline.kiosk("canteen_a")
    gate.tap(5)
    gate.wait_sent()
    pipeline.check()
    acked = service.metrics.acked
    influx_link.cut()
    started = now_us()
    gate.tap(200)
    canteen.tap(200)
    gate.wait_sent()
    canteen.wait_sent()
    time.sleep(max(0.0, 5 - (now_us() - started) / 1e6))
    # Held back: nothing acked, no more than ReceiveMaximum taken from the broker.
    assert service.metrics.acked == acked
    assert service.metrics.received - acked <= 100
    assert service.metrics.write_retries > 0 and not service.metrics.storage_ok
    influx_link.latency_s = 0.2
    influx_link.restore()
    gate.tap(50)
    assert pipeline.check(timeout=60) == 455
    assert service.metrics.storage_ok and not service.metrics.dead_letters
