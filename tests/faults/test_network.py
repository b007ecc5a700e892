"""Network faults between kiosk, broker and ingest: nothing lost, nothing counted twice."""

from __future__ import annotations

import time

import pytest

from kiosk.policy import Outcome
from tests.faults.pipeline import Pipeline, wait_until
from tests.faults.tcpproxy import has_mqtt_packet

PUBACK = 4


def test_broker_unreachable_during_500_taps_then_back(pipeline: Pipeline) -> None:
    """1. The broker is unreachable while 500 taps are made; it comes back."""
    pipeline.start_ingest()
    gate = pipeline.kiosk("gate_a")
    canteen = pipeline.kiosk("canteen_a")
    gate.tap(5)
    gate.wait_sent()
    pipeline.proxy.cut()
    wait_until(lambda: not gate.gateway.uplink.connected, timeout=10)
    gate.tap(300)
    canteen.tap(200)
    # Every tap was answered from the outbox while offline, none failed, none left it.
    assert gate.outcomes()[Outcome.FAULT] == canteen.outcomes()[Outcome.FAULT] == 0
    assert gate.gateway.outbox.depth() == 300 and canteen.gateway.outbox.depth() == 200
    pipeline.proxy.restore()
    gate.wait_sent()
    canteen.wait_sent()
    assert pipeline.check() == 505


def test_lost_pubacks_and_torn_publishes(pipeline: Pipeline) -> None:
    """2. The link is reset in the middle of a PUBLISH, or just before a PUBACK arrives."""
    service = pipeline.start_ingest()
    gate = pipeline.kiosk("gate_a")
    gate.tap(3)
    gate.wait_sent()
    cuts = 0
    for round_ in range(8):
        if round_ % 2:
            # A PUBACK from the broker is lost: the broker has the event, the kiosk does not know.
            pipeline.proxy.cut_when(lambda chunk: has_mqtt_packet(chunk, PUBACK))
        else:
            # Half a PUBLISH reaches the broker, then the connection dies.
            pipeline.proxy.cut_when(
                lambda chunk: has_mqtt_packet(chunk, 3), upstream=True, partial=True
            )
        target = pipeline.proxy.cuts + 1
        gate.tap(25)
        wait_until(lambda: pipeline.proxy.cuts >= target, timeout=10)  # noqa: B023
        cuts += 1
    pipeline.proxy.cut_when(None)
    gate.wait_sent()
    assert cuts == 8 and gate.gateway.uplink.stats.connects >= 9
    # Re-sent events arrived at ingest more than once, and still count once.
    assert service.metrics.received > 3 + 8 * 25
    assert pipeline.check() == 203


@pytest.mark.slow
def test_network_flapping_every_2s_for_20s(pipeline: Pipeline) -> None:
    """9. Kiosk and ingest links flap every 2 s for 20 s (shortened from a minute) while tapping."""
    from warmcard.settings import MqttSettings

    ingest_link = pipeline.new_proxy(pipeline.broker.port)
    pipeline.start_ingest(mqtt=MqttSettings(port=ingest_link.port))
    gate, canteen = pipeline.kiosk("gate_a"), pipeline.kiosk("canteen_a")
    end = time.monotonic() + 20
    next_flap = time.monotonic() + 2
    flaps = 0
    while time.monotonic() < end:
        gate.tap(1, wait=False)
        canteen.tap(1, wait=False)
        if time.monotonic() >= next_flap:
            next_flap += 2
            flaps += 1
            pipeline.proxy.flap()
            if flaps % 2:
                ingest_link.flap()
        time.sleep(0.05)
    gate.feedback.wait_count(gate.taps)
    canteen.feedback.wait_count(canteen.taps)
    gate.wait_sent()
    canteen.wait_sent()
    assert flaps >= 9 and gate.gateway.uplink.stats.connects >= 5
    assert pipeline.check(timeout=60) == gate.taps + canteen.taps


@pytest.mark.slow
def test_same_1000_events_replayed_three_times(pipeline: Pipeline) -> None:
    """10. 1,000 events delivered, then the same 1,000 re-sent three times: counts unchanged."""
    service = pipeline.start_ingest()
    gate, canteen = pipeline.kiosk("gate_a"), pipeline.kiosk("canteen_a")
    gate.tap(600)
    canteen.tap(400)
    gate.wait_sent()
    canteen.wait_sent()
    assert pipeline.check() == 1000  # waits until InfluxDB holds every one
    first = pipeline.counts()
    for replay in range(1, 4):
        for kiosk in (gate, canteen):
            assert kiosk.gateway.outbox.resend(1, kiosk.taps) == kiosk.taps
            kiosk.gateway.uplink.wake()
        gate.wait_sent()
        canteen.wait_sent()
        want = 1000 * (replay + 1)
        wait_until(lambda: service.metrics.acked >= want)  # noqa: B023
        assert pipeline.counts() == first
    assert service.metrics.received >= 4000
    assert pipeline.check() == 1000
