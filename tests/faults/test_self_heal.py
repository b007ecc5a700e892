"""Self-healing on real parts: a broker crash loses acknowledged taps, and the console's heal
rounds (cloud_ingest.ops.heal) ask the kiosks to re-send them with no command typed; a kiosk
that no longer holds them becomes a `gap_unhealed` alert instead."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from cloud_ingest.alerts.models import Alert, Kind, State
from cloud_ingest.ops.settings import HealSettings
from cloud_ingest.worker import IngestWorker
from tests.faults.pipeline import Pipeline, wait_until
from tests.support.stack import Stack
from warmcard.command.servers import InfluxD

FAST_HEAL = HealSettings(every_s=1.0, grace_s=1.0, max_requests=3)


def _crash_with_taps_queued(pipeline: Pipeline, heal: HealSettings, taps: dict[str, int]):
    """A running pipeline whose worker is away while the kiosks' taps wait at the broker; the
    broker is killed before it saves them and restarted, and the worker comes back. The console
    runs throughout. Returns the stack, the kiosks and the moment of the crash."""
    pipeline.broker.stop()
    pipeline.broker.extra_conf = "autosave_interval 3600\n"  # the crash window made certain
    pipeline.broker.start()
    stack: Stack = pipeline.start_ingest(heal=heal)
    kiosks = {key: pipeline.kiosk(key) for key in taps}
    for kiosk in kiosks.values():
        kiosk.tap(5)
        kiosk.wait_sent()
    pipeline.check()
    stack.worker.stop()  # its persistent session keeps queueing on the broker
    for key, n in taps.items():
        kiosks[key].tap(n)
    for kiosk in kiosks.values():
        kiosk.wait_sent()  # PUBACKed: the kiosks consider them delivered
    crashed = time.monotonic()
    pipeline.broker.kill()
    pipeline.broker.start()
    for kiosk in kiosks.values():  # nothing can have been re-sent before a worker runs
        assert len(pipeline.stored(kiosk.device_id)) == 5
    worker = IngestWorker(stack.worker.settings)
    worker.start()
    pipeline.services.append(worker)
    return stack, kiosks, crashed


@pytest.fixture(params=["sqlite", "postgresql"])
def either_pipeline(
    request: pytest.FixtureRequest, tmp_path: Path, influxd: InfluxD, influx_db: str
) -> Iterator[Pipeline]:
    """The fault pipeline on one machine's SQLite files, then on PostgreSQL."""
    url = request.getfixturevalue("pg_url") if request.param == "postgresql" else None
    p = Pipeline(tmp_path, influxd, influx_db, database_url=url)
    try:
        yield p
    finally:
        p.close()


def test_broker_crash_healed_with_no_command_typed(either_pipeline: Pipeline) -> None:
    pipeline = either_pipeline
    stack, kiosks, crashed = _crash_with_taps_queued(
        pipeline, FAST_HEAL, {"gate_a": 300, "canteen_a": 200}
    )
    # Every committed seq stored exactly once, the counts exact, reconcile clean.
    assert pipeline.check(timeout=60) == 510
    healed_s = time.monotonic() - crashed
    print(f"broker crash healed by itself in {healed_s:.1f} s")
    # The broker had lost them: the kiosks sent them again because the healer asked.
    assert kiosks["gate_a"].gateway.uplink.stats.resend_events >= 300
    assert kiosks["canteen_a"].gateway.uplink.stats.resend_events >= 200
    healer = stack.console.healer
    assert healer.requested_total >= 2
    health = stack.console.health()
    assert health["heal_rounds"] >= 2 and health["heal_requests"] == healer.requested_total
    # Healed, nothing left for a person: no alert from the healer, the gaps forgotten.
    wait_until(lambda: not healer.ledger.gaps())
    alerts = stack.console.alerts.store.find([""], kinds=[Kind.GAP_UNHEALED, Kind.SEQ_CONFLICT])
    assert alerts == []


def test_kiosk_that_no_longer_holds_the_taps_is_an_alert(pipeline: Pipeline) -> None:
    heal = HealSettings(every_s=0.5, grace_s=0.5, max_requests=2)
    stack, kiosks, _ = _crash_with_taps_queued(pipeline, heal, {"gate_a": 40})
    gate = kiosks["gate_a"]
    # The outbox pruned them (as after its 14-day retention): a resend finds nothing.
    assert gate.gateway.outbox.prune_acked(older_than_us=2**62) == 45
    store = stack.console.alerts.store

    def alerted() -> list[Alert]:
        gate.tap(1)  # taps keep being stored: the pipeline flows, only these seqs do not come
        return store.find([""], kinds=[Kind.GAP_UNHEALED])

    alert = wait_until(alerted, timeout=30)[0]
    assert alert.subject == gate.device_id and alert.state is State.OPEN
    assert alert.device_id == gate.device_id and alert.site_id == pipeline.site_of(gate.device_id)
    assert "6-45" in alert.detail_en and "6-45" in alert.detail_zh
    assert "--request-resend" in alert.detail_en
    assert gate.gateway.uplink.stats.resend_requests == 2  # asked twice, then it stopped
    assert gate.gateway.uplink.stats.resend_events == 0
    # Raised once for this stall, not once per round.
    healer = stack.console.healer
    rounds = healer.rounds
    wait_until(lambda: healer.rounds >= rounds + 4)
    assert store.get(alert.id).count == 1
    assert gate.gateway.uplink.stats.resend_requests == 2
