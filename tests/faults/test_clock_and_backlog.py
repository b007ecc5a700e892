"""Wrong kiosk clocks and a multi-day backlog: taps kept, flagged, counted on the right day."""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from zoneinfo import ZoneInfo

from tests.faults.kiosks import TZ, OffsetClock, read_outbox
from tests.faults.pipeline import Pipeline, wait_until
from warmcard.timestamps import now_us

DAY_S = 86400


def test_rtc_less_clock_days_wrong_then_ntp(pipeline: Pipeline) -> None:
    """11. One kiosk boots 3 days behind, another in 1970 (no fake-hwclock), both unsynced;
    then NTP corrects them. Nothing is dead-lettered as clock_past, every event made while
    unsynced says clock_synced=false, and times stay strictly increasing per device."""
    service = pipeline.start_ingest()
    behind = OffsetClock(-3 * DAY_S, synced=False)
    epoch = OffsetClock(-now_us() / 1e6 + 5, synced=False)  # 1970-01-01T00:00:05Z
    gate = pipeline.kiosk("gate_a", clock=behind)
    canteen = pipeline.kiosk("canteen_a", clock=epoch)
    gate.tap(20)
    canteen.tap(20)
    gate.wait_sent()
    canteen.wait_sent()
    behind.set(0, synced=True)
    epoch.set(0, synced=True)
    gate.tap(20)
    canteen.tap(20)
    assert pipeline.check() == 80
    assert not service.metrics.dead_letters  # no clock_past: nothing lost to the contract
    for kiosk in (gate, canteen):
        events = [e for _, _, e in read_outbox(kiosk.outbox_path)]
        assert [e.clock_synced for e in events] == [False] * 20 + [True] * 20
        stamps = [e.ts_us for e in events]
        assert stamps == sorted(stamps) and len(set(stamps)) == 40
        flags = {int(r["seq"]): r["clock_synced"] for r in pipeline.stored(kiosk.device_id)}
        assert flags == {e.seq: e.clock_synced for e in events}
        # Once synced, events are stamped with the real time again.
        assert abs(events[-1].ts_us - now_us()) < 60_000_000
    # The 1970 kiosk stamped at the contract's floor, not before it.
    first = next(e for _, _, e in read_outbox(canteen.outbox_path))
    assert first.ts.startswith("2024-01-01T00:00:00")


def test_three_day_backlog_arrives_at_once(pipeline: Pipeline) -> None:
    """12. A kiosk offline for 3 days delivers its whole backlog at once: each old day's count
    is right and today's live occupancy holds only today's taps."""
    service = pipeline.start_ingest()
    clock = OffsetClock(-3 * DAY_S, synced=True)
    pipeline.proxy.cut()
    gate = pipeline.kiosk("gate_a", clock=clock)
    per_day = {-3: 30, -2: 40, -1: 50, 0: 7}
    for offset, taps in per_day.items():
        clock.set(offset * DAY_S, synced=True)
        gate.tap(taps)
    assert gate.gateway.outbox.depth() == sum(per_day.values())
    pipeline.proxy.restore()
    gate.wait_sent()
    assert pipeline.check() == 127
    tz = ZoneInfo(TZ)
    events = [e for _, _, e in read_outbox(gate.outbox_path)]
    by_day = Counter(datetime.fromtimestamp(e.ts_us / 1e6, tz).date().isoformat() for e in events)
    series = pipeline.query(
        f'SELECT count("seq") FROM "taps" WHERE device=\'{gate.device_id}\' '
        f"AND time > now() - 5d GROUP BY time(1d) tz('{TZ}')"
    )
    stored = {
        datetime.fromtimestamp(row[0] / 1e6, tz).date().isoformat(): row[1]
        for row in series[0].values
        if row[1]
    }
    assert stored == dict(by_day) and len(stored) == 4
    today = [
        e
        for e in events
        if datetime.fromtimestamp(e.ts_us / 1e6, tz).date() == datetime.now(tz).date()
    ]
    inside: dict[str, bool] = {}
    for e in today:
        if e.person_id:
            inside[e.person_id] = e.kind.value == "check_in"
    want = (
        len({e.person_id for e in today if e.kind.value == "check_in"}),
        sum(inside.values()),
        sum(1 for e in today if e.kind.value == "unknown_card"),
    )

    def live() -> tuple[int, int, int]:
        sites = service.live.snapshot()["sites"]
        site = next(s for s in sites if s["site_id"] == pipeline.ids["site_a"])
        return site["arrivals"], site["present"], site["unknown_cards"]

    wait_until(lambda: live() == want, timeout=5)
    service.live.rebuild()  # and the same from InfluxDB
    assert live() == want
