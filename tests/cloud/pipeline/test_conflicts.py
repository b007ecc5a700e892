# mypy: allow-untyped-defs
"""Conflict detection: a seq or event_id seen again with other content is dead-lettered, never
written over the first; an identical redelivery passes. Real Mosquitto and InfluxDB."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from cloud_ingest.cli.config import load_settings
from cloud_ingest.ops.reconcile import check
from cloud_ingest.pipeline.conflicts import SeenIndex
from cloud_ingest.pipeline.influx import InfluxV1
from cloud_ingest.process import adopt_legacy_seen_index
from tests.support.ingest import EventMaker, Publisher, make_settings, wait_for, write_registry
from tests.support.stack import Stack
from warmcard.contract import Kind, TapEvent
from warmcard.rejections import Reason
from warmcard.timestamps import format_ts, new_event_id, now_us


@pytest.fixture
def publisher(mosquitto) -> Iterator[Publisher]:
    pub = Publisher(mosquitto.port)
    yield pub
    pub.close()


def variant(event: TapEvent, **changes) -> TapEvent:
    return TapEvent.model_validate(event.model_dump() | changes)


def stored_rows(settings, device: str) -> list[dict]:
    storage = InfluxV1(settings.influx)
    try:
        series = storage.query(
            f'SELECT "seq", "event_id", "card_uid" FROM "taps" WHERE "device" = \'{device}\''
        )
    finally:
        storage.close()
    return [row for s in series for row in s.rows()]


def test_conflicting_redelivery_is_dead_lettered_identical_is_not(
    tmp_path, mosquitto, influxd, influx_db, topic_prefix, publisher
):
    ids = write_registry(tmp_path, topic_prefix)
    settings = make_settings(tmp_path, mosquitto, influxd, influx_db, topic_prefix)
    gate = ids["gate_a"]
    maker = EventMaker(gate)
    events = [maker.make(Kind.CHECK_IN, f"P000{i}") for i in (1, 2, 3)]
    service = Stack(settings)
    service.start()
    try:
        wait_for(service.consumer.subscribed.is_set)
        publisher.publish(events)
        wait_for(lambda: service.metrics.acked == 3)
        # Identical redelivery (MQTT at-least-once, or a kiosk re-sending): passes, no alarm.
        publisher.publish([events[1], events[1]])
        wait_for(lambda: service.metrics.acked == 5)
        assert service.metrics.dead_letters == {}
        assert service.metrics.stored == 5

        later = events[1].ts_us + 500_000
        forged = [
            # seq 2 again at another time: InfluxDB would add a second point with seq 2.
            variant(events[1], ts=format_ts(later), event_id=new_event_id(later)),
            # seq 3 again, same time and kind, other card: InfluxDB would overwrite the fields.
            variant(events[2], card_uid="04FFFFFF", event_id=new_event_id(events[2].ts_us)),
            # A new seq reusing seq 1's event id.
            variant(events[0], seq=4, ts=format_ts(events[2].ts_us + 1000)),
        ]
        publisher.publish(forged)
        wait_for(lambda: service.metrics.acked == 8)
        assert service.metrics.dead_letters == {"conflict": 3}
        letters = service.deadletters.list(reason=Reason.CONFLICT)
        assert sorted(letter.payload for letter in letters) == sorted(e.to_bytes() for e in forged)
        recorded = {(c.seq, c.rule) for c in service.seen.conflicts(gate)}
        assert recorded == {(2, "seq"), (3, "seq"), (4, "event_id")}

        # The first content is what is stored, once each.
        rows = stored_rows(settings, gate)
        assert sorted((r["seq"], r["event_id"], r["card_uid"]) for r in rows) == sorted(
            (e.seq, e.event_id, e.card_uid) for e in events
        )

        # Reconcile reports the refused conflicts; the seq line itself is whole.
        day = service.live.snapshot()["sites"][0]["date"]
        report = check(service.query_storage, service.registry, [gate], day, seen=service.seen)
        assert report.gaps == []
        assert sorted((c.seq, c.source) for c in report.conflicts) == [
            (2, "ingest"),
            (3, "ingest"),
            (4, "ingest"),
        ]
        assert any("04FFFFFF" not in c.detail and c.seq == 3 for c in report.conflicts)

        # The same forged message delivered again is refused again, recorded once.
        publisher.publish([forged[0]])
        wait_for(lambda: service.metrics.acked == 9)
        assert service.metrics.dead_letters == {"conflict": 4}
        assert len(service.seen.conflicts(gate)) == 3
    finally:
        service.stop()


def _event(device: str, seq: int, ts_us: int, card: str = "04A1B2C3") -> TapEvent:
    return TapEvent(
        event_id=new_event_id(ts_us),
        device_id=device,
        seq=seq,
        ts=format_ts(ts_us),
        card_uid=card,
        kind=Kind.CHECK_IN,
        person_id="P0001",
    )


def test_seen_index_batches_persistence_and_pruning(store_at):
    path = store_at("conflicts")
    now = now_us()
    a = [_event("k-a", s, now + s) for s in range(1, 6)]
    index = SeenIndex(path, retention_days=60)
    assert index.admit(a[:3], now) == {}
    # Within one batch: an identical copy passes, a different one conflicts.
    twin = variant(a[3], card_uid="04BBBBBB", event_id=new_event_id(a[3].ts_us))
    found = index.admit([a[3], a[3], twin, a[0]], now)
    assert (
        list(found) == [2] and found[2].rule == "seq" and found[2].first_event_id == a[3].event_id
    )
    index.close()

    # The index survives a restart: a redelivery after it still passes, a forgery still conflicts.
    index = SeenIndex(path, retention_days=60)
    other_device = _event("k-b", 1, now)
    assert index.admit([a[1], a[4], other_device], now) == {}
    forged = variant(a[2], clock_synced=False)
    assert list(index.admit([forged], now)) == [0]
    assert index.size() == 6

    # Rows are forgotten retention_days after first seen; conflicts too.
    later = now + 61 * 86400 * 1_000_000
    fresh = _event("k-a", 100, later)
    index.admit([fresh], later)  # the first admit after the prune interval prunes
    assert index.size() == 1
    assert index.conflicts() == []
    assert index.admit([forged], later) == {}  # forgotten: no longer detectable here
    index.close()


def test_workers_sharing_the_index_refuse_one_version_of_each_seq(store_at):
    """Two workers (each its own connections, as on two hosts) admit different versions of the
    same seqs at once, in batches: for every seq exactly one version is stored, the other is a
    conflict, whichever worker won it."""
    now = now_us()
    ours = [_event("k-race", s, now + s) for s in range(1, 401)]
    theirs = [variant(e, card_uid="04EEEEEE", event_id=new_event_id(e.ts_us)) for e in ours]
    workers = [SeenIndex(store_at("conflicts")) for _ in range(2)]
    refused: list[set[int]] = [set(), set()]
    start = threading.Barrier(2)

    def run(n: int, events: list[TapEvent]) -> None:
        start.wait()
        for i in range(0, len(events), 50):
            refused[n].update(e + i for e in workers[n].admit(events[i : i + 50], now))

    try:
        threads = [threading.Thread(target=run, args=a) for a in ((0, ours), (1, theirs))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert refused[0].isdisjoint(refused[1])
        assert refused[0] | refused[1] == set(range(400))
        assert workers[0].size() == 400
        assert len(workers[1].conflicts("k-race", limit=1000)) == 400
    finally:
        for w in workers:
            w.close()


def test_an_event_id_reused_under_another_seq_is_a_conflict(store_at):
    now = now_us()
    index = SeenIndex(store_at("conflicts"))
    try:
        first = _event("k-id", 1, now)
        assert index.admit([first, _event("k-id", 2, now + 1)], now) == {}
        reused = variant(first, seq=3)
        found = index.admit([_event("k-id", 4, now + 2), reused], now)
        assert list(found) == [1]  # the new seq 4 passes
        assert (found[1].rule, found[1].first_seq, found[1].first_event_id) == (
            "event_id",
            1,
            first.event_id,
        )
        assert index.admit([first], now) == {}  # a redelivery of the first still passes
        assert [(c.rule, c.seq) for c in index.conflicts("k-id")] == [("event_id", 3)]
        assert index.size() == 3
    finally:
        index.close()


def test_workers_of_one_host_share_the_conflict_index_by_default(tmp_path, monkeypatch):
    """Two workers configured from ingest.example.toml (only their client_id differs) open the
    same index file; a worker of an earlier release's own index is taken over, history kept."""
    monkeypatch.chdir(tmp_path)
    example = Path(__file__).parents[3] / "cloud_ingest" / "ingest.example.toml"
    text = example.read_text(encoding="utf-8").replace("/var/lib/warmcard/", f"{tmp_path}/")
    settings = []
    for n in (1, 2):
        config = tmp_path / f"ingest-{n}.toml"
        config.write_text(text.replace('client_id = "ingest-1"', f'client_id = "ingest-{n}"'))
        settings.append(load_settings(config))
    one, two = settings
    assert one.client_id != two.client_id
    assert one.store("conflicts") == two.store("conflicts") == tmp_path / "conflicts.sqlite3"

    # Before: ingest-1 kept seen-ingest-1.sqlite3; opening the stores moves it to the shared file.
    legacy = SeenIndex(one.legacy_seen_index_file)
    now = now_us()
    assert legacy.admit([_event("k-old", 1, now)], now) == {}
    legacy.close()
    assert adopt_legacy_seen_index(one) and not one.legacy_seen_index_file.exists()
    assert not adopt_legacy_seen_index(two)  # the shared file exists: nothing to take over
    shared = SeenIndex(two.store("conflicts"))
    try:
        other = variant(_event("k-old", 1, now), card_uid="04EEEEEE", event_id=new_event_id(now))
        assert list(shared.admit([other], now)) == [0]  # the old history decides
    finally:
        shared.close()
