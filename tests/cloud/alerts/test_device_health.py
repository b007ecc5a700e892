"""Device health alerts with a controlled clock: silent, offline, outbox growing, reader fault."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from cloud_ingest.alerts.engine import AlertEngine
from cloud_ingest.alerts.models import Alert, Kind, State
from cloud_ingest.pipeline.live import LiveState
from tests.support.alerts import UsClock, local_us, make_engine
from tests.support.ingest import write_registry
from warmcard.contract import DeviceStatus, ReaderState
from warmcard.timestamps import format_ts

Setup = tuple[AlertEngine, LiveState, UsClock, dict[str, str]]


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[tuple[AlertEngine, LiveState, UsClock, dict[str, str]]]:
    ids = write_registry(tmp_path, "hx")
    clock = UsClock(local_us(2024, 5, 6, 9))
    engine, live, registry = make_engine(
        tmp_path, ids, clock, heartbeat_alarm_s=300, offline_alarm_s=60,
        outbox_growth_heartbeats=4, outbox_alarm_depth=100, outbox_alarm_s=600,
    )  # fmt: skip
    yield engine, live, clock, ids
    engine.store.close()
    registry.close()


def beat(live: LiveState, clock: UsClock, device: str, **kw: object) -> None:
    """A heartbeat as the kiosk sends it (clock synced, stamped now)."""
    live.update_status(
        device,
        DeviceStatus(
            device_id=device, state=kw.pop("state", "online"), ts=format_ts(clock.t),  # type: ignore[arg-type]
            clock_synced=True, **kw,  # type: ignore[arg-type]
        ),
    )  # fmt: skip


def alerts(engine: AlertEngine, kind: Kind, device: str) -> list[Alert]:
    return [a for a in engine.store.find([""], kinds=[kind]) if a.subject == device]


def test_heartbeat_stops_alarms_and_clears_itself_when_it_returns(setup: Setup) -> None:
    engine, live, clock, ids = setup
    gate = ids["gate_a"]
    beat(live, clock, gate, reader=ReaderState.OK, outbox_depth=0)
    engine.tick()
    assert alerts(engine, Kind.DEVICE_OFFLINE, gate) == []
    clock.advance(299)
    engine.tick()
    assert alerts(engine, Kind.DEVICE_OFFLINE, gate) == []  # not yet: 299 s < 300 s
    clock.advance(2)
    engine.tick()
    engine.tick()  # raising again updates the same alert
    [alert] = alerts(engine, Kind.DEVICE_OFFLINE, gate)
    assert alert.state is State.OPEN and alert.count == 2
    assert alert.site_id == ids["site_a"]
    assert alert.area_path == f"dali/eryuan/xishan/{ids['site_a']}"
    assert "无心跳" in alert.detail_zh and "no heartbeat" in alert.detail_en
    clock.advance(30)
    beat(live, clock, gate, reader=ReaderState.OK, outbox_depth=0)
    engine.tick()
    [alert] = alerts(engine, Kind.DEVICE_OFFLINE, gate)
    assert alert.state is State.CLOSED and alert.cleared_by == "auto"
    assert alert.cleared_at == clock.t


def test_last_will_offline_alarms_after_grace_and_clears_on_reconnect(setup: Setup) -> None:
    engine, live, clock, ids = setup
    gate = ids["gate_b"]
    beat(live, clock, gate, state="offline")
    clock.advance(59)
    engine.tick()
    assert alerts(engine, Kind.DEVICE_OFFLINE, gate) == []  # a reboot is not an alarm
    clock.advance(2)
    engine.tick()
    [alert] = alerts(engine, Kind.DEVICE_OFFLINE, gate)
    assert alert.state is State.OPEN and "断线" in alert.detail_zh
    assert alert.area_path.startswith("dali/er/haidong/")
    beat(live, clock, gate)
    engine.tick()
    assert alerts(engine, Kind.DEVICE_OFFLINE, gate)[0].cleared_by == "auto"


def test_retained_heartbeat_of_a_dead_kiosk_is_not_fresh_after_restart(setup: Setup) -> None:
    engine, live, clock, ids = setup
    gate = ids["gate_a"]
    # The broker hands us a retained heartbeat the kiosk sent an hour ago.
    live.update_status(
        gate,
        DeviceStatus(
            device_id=gate, state="online", ts=format_ts(clock.t - 3600 * 1_000_000),
            clock_synced=True,
        ),
    )  # fmt: skip
    engine.tick()
    assert len(alerts(engine, Kind.DEVICE_OFFLINE, gate)) == 1


def test_outbox_growing_over_heartbeats_alarms_holds_while_flat_and_clears_when_draining(
    setup: Setup,
) -> None:
    engine, live, clock, ids = setup
    gate = ids["canteen_a"]
    for depth in (0, 3, 2, 5, 9):  # never four rising in a row
        beat(live, clock, gate, outbox_depth=depth)
        engine.tick()
        engine.tick()  # a tick without a new heartbeat adds no sample
        clock.advance(30)
    assert alerts(engine, Kind.OUTBOX_GROWING, gate) == []
    beat(live, clock, gate, outbox_depth=14)  # 2, 5, 9, 14: rising over four heartbeats
    engine.tick()
    [alert] = alerts(engine, Kind.OUTBOX_GROWING, gate)
    assert alert.state is State.OPEN and "2 → 14" in alert.detail_zh
    clock.advance(30)
    beat(live, clock, gate, outbox_depth=14)  # flat: still not sending
    engine.tick()
    assert alerts(engine, Kind.OUTBOX_GROWING, gate)[0].state is State.OPEN
    clock.advance(30)
    beat(live, clock, gate, outbox_depth=6)  # draining
    engine.tick()
    assert alerts(engine, Kind.OUTBOX_GROWING, gate)[0].cleared_by == "auto"


def test_outbox_above_threshold_for_longer_than_the_limit(setup: Setup) -> None:
    engine, live, clock, ids = setup
    gate = ids["gate_a"]
    for depth in (150, 120, 150, 120, 150, 120, 150, 120, 150, 120, 150):
        beat(live, clock, gate, outbox_depth=depth)
        engine.tick()
        if clock.t - local_us(2024, 5, 6, 9) < 600 * 1_000_000:
            assert alerts(engine, Kind.OUTBOX_GROWING, gate) == [], depth
        clock.advance(60)
    [alert] = alerts(engine, Kind.OUTBOX_GROWING, gate)
    assert "10 分钟" in alert.detail_zh
    beat(live, clock, gate, outbox_depth=40)
    engine.tick()
    assert alerts(engine, Kind.OUTBOX_GROWING, gate)[0].state is State.CLOSED


def test_reader_fault_and_absent_alarm_and_clear(setup: Setup) -> None:
    engine, live, clock, ids = setup
    gate = ids["gate_a"]
    beat(live, clock, gate, reader=ReaderState.FAULT)
    engine.tick()
    [alert] = alerts(engine, Kind.READER_FAULT, gate)
    assert "故障" in alert.detail_zh and "fault" in alert.detail_en
    beat(live, clock, gate, reader=ReaderState.ABSENT)
    engine.tick()
    [alert] = alerts(engine, Kind.READER_FAULT, gate)  # the same alert, updated
    assert "未连接" in alert.detail_zh and alert.count == 2
    beat(live, clock, gate, reader=ReaderState.OK)
    engine.tick()
    assert alerts(engine, Kind.READER_FAULT, gate)[0].cleared_by == "auto"


def test_devices_without_status_yet_keep_their_alerts(setup: Setup) -> None:
    """After a restart, before the retained statuses arrive, nothing is cleared."""
    engine, live, clock, ids = setup
    gate = ids["gate_a"]
    beat(live, clock, gate, reader=ReaderState.FAULT)
    engine.tick()
    fresh = LiveState(engine.registry, None, clock=clock)
    engine.live = fresh
    engine.tick()
    assert alerts(engine, Kind.READER_FAULT, gate)[0].state is State.OPEN
