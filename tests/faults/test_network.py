"""Network faults between kiosk, broker and ingest: nothing lost, nothing counted twice."""

from __future__ import annotations

import time

import pytest
from pipeline import Pipeline, wait_until
from tcpproxy import has_mqtt_packet

from kiosk.feedback import Outcome

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

