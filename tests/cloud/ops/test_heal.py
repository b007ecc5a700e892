# mypy: allow-untyped-defs
"""Self-healing rounds against a real InfluxDB, a real broker and the alerts database: when a
gap is asked for, again, and given up on; what is alerted once; one console per round."""

from __future__ import annotations

from datetime import date

import pytest

from cloud_ingest.alerts.engine import AlertEngine
from cloud_ingest.alerts.models import Kind, State
from cloud_ingest.alerts.settings import AlertSettings
from cloud_ingest.alerts.store import AlertStore
from cloud_ingest.ops.heal import Healer
from cloud_ingest.ops.heal_ledger import HealLedger
from cloud_ingest.ops.settings import HealSettings
from cloud_ingest.ops.statusread import ToolLink
from tests.cloud.ops.test_reconcile import at, store, tap
from tests.support.ingest import TZ
from warmcard.contract import DeviceStatus
from warmcard.settings import MqttSettings

DAY = date(2026, 11, 29)
S = 1_000_000
NOW = at(DAY, 12)


@pytest.fixture
def heal_env(env, tmp_path, mosquitto):
    ids, _, storage, registry = env
    engine = AlertEngine(
        AlertSettings(), registry, None, None, console_db_path=None, location=tmp_path / "a.db"
    )
    link = ToolLink(MqttSettings(port=mosquitto.port)).__enter__()
    statuses: dict[str, DeviceStatus | None] = {}
    flow = {"stored_us": NOW + 10**12}  # when the console last heard of stored taps

    def healer(holder: str = "console-1", **kw) -> Healer:
        values = dict(every_s=60.0, grace_s=60.0, max_requests=2) | kw
        return Healer(
            HealSettings(**values),
            holder=holder,
            storage=storage,
            registry=registry,
            alerts=engine,
            statuses=lambda: statuses,
            publisher=link,
            last_stored_us=lambda: flow["stored_us"],
            tz=TZ,
        )

    yield ids, storage, engine, statuses, healer, flow
    link.close()
    engine.store.close()


def ranges(result) -> list[tuple[str, int, int]]:
    return [(c.device_id, c.from_seq, c.to_seq) for c in result.requested]


def test_gap_asked_for_after_grace_again_after_grace_then_alerted_once_then_healed(heal_env):
    ids, storage, engine, statuses, make, flow = heal_env
    gate = ids["gate_a"]
    store(
        storage,
        ids["site_a"],
        [tap(gate, s, at(DAY, 9, s)) for s in range(1, 11) if s > 6 or s < 4],
    )
    # Committed up to 12; 12 still unacknowledged in the outbox (in flight, never asked for).
    statuses[gate] = DeviceStatus(device_id=gate, state="online", last_seq=12, outbox_depth=1)
    healer = make()
    first = healer.round(NOW)
    assert first.ran and first.missing_seqs == 4 and first.requested == []  # just seen
    assert healer.round(NOW + 30 * S).requested == []  # still within grace
    asked = healer.round(NOW + 61 * S)
    assert ranges(asked) == [(gate, 4, 6), (gate, 11, 11)]
    assert len({c.request_id for c in asked.requested}) == 2
    assert healer.round(NOW + 90 * S).requested == []  # asked 29 s ago: give it time
    # Nothing at all stored since (ingest stalled): not asked again, not counted as a failure.
    flow["stored_us"] = NOW
    for t in (122, 183, 244):
        assert healer.round(NOW + t * S).requested == []
    assert healer.ledger.gaps()[gate].requests == 1
    assert engine.store.find([""], kinds=[Kind.GAP_UNHEALED]) == []
    flow["stored_us"] = NOW + 10**12
    # Part of it arrives: progress resets the count, and the rest is asked for again.
    store(storage, ids["site_a"], [tap(gate, 4, at(DAY, 9, 4))])
    again = healer.round(NOW + 322 * S)
    assert ranges(again) == [(gate, 5, 6), (gate, 11, 11)]
    assert healer.ledger.gaps()[gate].requests == 1
    assert ranges(healer.round(NOW + 383 * S)) == [(gate, 5, 6), (gate, 11, 11)]
    # Two requests brought nothing: an alert naming the device, seqs and days; no more asking.
    stalled = healer.round(NOW + 444 * S)
    assert stalled.requested == [] and stalled.unhealed == [gate]
    [alert] = engine.store.find([""], kinds=[Kind.GAP_UNHEALED])
    assert alert.subject == gate and alert.site_id == ids["site_a"]
    assert "5-6 (2026-11-29)" in alert.detail_en and "11 (2026-11-29..…)" in alert.detail_en
    assert "5-6" in alert.detail_zh and f"--from 2026-11-27 --to {DAY}" in alert.detail_en
    quiet = healer.round(NOW + 505 * S)
    assert quiet.requested == [] and quiet.unhealed == []
    assert engine.store.get(alert.id).count == 1
    # Sent by hand after all (or the kiosk came back): healed, the alert closes by itself.
    store(storage, ids["site_a"], [tap(gate, s, at(DAY, 9, s)) for s in (5, 6, 11, 12)])
    statuses[gate] = DeviceStatus(device_id=gate, state="online", last_seq=12, outbox_depth=0)
    done = healer.round(NOW + 566 * S)
    assert done.healed == [gate] and done.missing_seqs == 0
    closed = engine.store.get(alert.id)
    assert closed.state is State.CLOSED and closed.cleared_by == "auto"
    assert healer.ledger.gaps() == {}


def test_offline_kiosk_not_asked_and_budget_bounds_a_round(heal_env):
    ids, storage, engine, statuses, make, _ = heal_env
    gate, canteen = ids["gate_a"], ids["canteen_a"]
    store(storage, ids["site_a"], [tap(gate, 1, at(DAY, 9)), tap(canteen, 1, at(DAY, 9))])
    statuses[gate] = DeviceStatus(device_id=gate, state="offline", last_seq=30, outbox_depth=0)
    statuses[canteen] = DeviceStatus(device_id=canteen, state="online", last_seq=9, outbox_depth=0)
    healer = make(grace_s=0, max_resend_per_round=5)
    result = healer.round(NOW)
    assert result.missing_seqs == 29 + 8
    assert ranges(result) == [(canteen, 2, 6)]  # 5 seqs in all; the offline kiosk not asked
    state = healer.ledger.gaps()
    assert state[gate].requests == 0 and state[canteen].requests == 1
    for i in range(1, 5):  # an offline kiosk never stalls into an alert
        healer.round(NOW + i * 61 * S)
    assert healer.ledger.gaps()[gate].requests == 0
    assert [a.subject for a in engine.store.find([""], kinds=[Kind.GAP_UNHEALED])] == [canteen]


def test_conflict_alerted_once_and_not_reopened_after_a_manager_closes_it(heal_env):
    ids, storage, engine, _, make, _ = heal_env
    gate = ids["gate_a"]
    events = [tap(gate, s, at(DAY, 9, s)) for s in (1, 2, 3)]
    store(storage, ids["site_a"], [*events, tap(gate, 2, at(DAY, 11))])
    healer = make()
    assert healer.round(NOW).conflicts == [gate]
    [alert] = engine.store.find([""], kinds=[Kind.SEQ_CONFLICT])
    assert alert.subject == gate and "2 (2026-11-29, storage)" in alert.detail_en
    assert healer.round(NOW + 61 * S).conflicts == []
    assert engine.store.close_alert(alert.id, "manager", NOW + 62 * S)
    healer.round(NOW + 122 * S)
    assert [a.state for a in engine.store.find([""], kinds=[Kind.SEQ_CONFLICT])] == [State.CLOSED]


def test_one_console_heals_per_round(heal_env, tmp_path):
    ids, storage, _, statuses, make, _ = heal_env
    gate = ids["gate_a"]
    store(storage, ids["site_a"], [tap(gate, s, at(DAY, 9, s)) for s in (1, 5)])
    statuses[gate] = DeviceStatus(device_id=gate, state="online", last_seq=5, outbox_depth=0)
    one, two = make("console-1", grace_s=0), make("console-2", grace_s=0)
    assert ranges(one.round(NOW)) == [(gate, 2, 4)]
    skipped = two.round(NOW + 1 * S)
    assert not skipped.ran and skipped.requested == []
    assert one.round(NOW + 61 * S).ran  # the holder renews: held until +181 s
    assert not two.round(NOW + 150 * S).ran
    assert two.round(NOW + 181 * S).ran  # console-1 went quiet: the lease expired, taken over
    assert not one.round(NOW + 182 * S).ran
    # The lease is one atomic write on the shared file, whichever connection makes it.
    other = AlertStore.open(tmp_path / "a.db")
    try:
        ledger = HealLedger(other.db)
        assert ledger.lease() == ("console-2", NOW + 181 * S + 120 * S)
        assert not ledger.take_lease("console-3", NOW + 200 * S, 60 * S)
        assert ledger.take_lease("console-3", NOW + 301 * S, 60 * S)
    finally:
        other.close()
