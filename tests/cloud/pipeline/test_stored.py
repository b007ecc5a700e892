# mypy: allow-untyped-defs
"""The stored-taps channel: what workers tell every console, its bounds, and a console that sees
every tap whichever worker stored it."""

from __future__ import annotations

import json

import pytest

from cloud_ingest.pipeline.live import LiveEvent
from cloud_ingest.pipeline.stored import (
    MAX_MESSAGE_BYTES,
    StoredTap,
    decode,
    encode,
    stored_topic,
)
from cloud_ingest.worker import IngestWorker
from tests.support.ingest import (
    EventMaker,
    Publisher,
    check_live,
    influx_counts,
    make_settings,
    scenario,
    wait_for,
    write_registry,
)
from tests.support.stack import Stack
from warmcard.contract import Kind, MealPeriod
from warmcard.rejections import InvalidPayload, Reason


def tap(i: int, kind: Kind = Kind.CHECK_IN, meal: MealPeriod | None = None) -> StoredTap:
    event = LiveEvent(f"kiosk-{i % 7:02d}", i + 1, 1_790_000_000_000_000 + i, kind, meal, "P0001")
    return StoredTap(f"site-{i % 3:02d}", event, f"0190f5a2-1b3c-7d4e-8f60-{i:012x}", "04A1B2C3")


def test_round_trip_keeps_every_field():
    taps = [tap(0), tap(1, Kind.MEAL, MealPeriod.LUNCH), tap(2, Kind.UNKNOWN_CARD)]
    taps[2] = StoredTap(
        taps[2].site_id,
        LiveEvent("kiosk-02", 3, taps[2].event.ts_us, Kind.UNKNOWN_CARD, None, None),
        taps[2].event_id,
        "04112233445566",
    )
    assert [t for message in encode(taps) for t in decode(message)] == taps


def test_a_row_is_what_json_dumps_writes():
    # Odd but encodable strings too: the row quotes like json, whatever a field holds.
    odd = StoredTap(
        's"\\é', LiveEvent("k\n", 1, -5, Kind.MEAL, MealPeriod.DINNER, "人"), "", "\x00"
    )
    for t in [tap(0), tap(1, Kind.MEAL, MealPeriod.LUNCH), odd]:
        e = t.event
        fields = [t.site_id, e.device_id, e.seq, e.ts_us, e.kind.value]
        fields += [e.meal_period.value if e.meal_period else None, e.person_id, t.event_id]
        expected = json.dumps([*fields, t.card_uid], separators=(",", ":"))
        assert encode([t]) == [f'{{"v":1,"taps":[{expected}]}}'.encode()]


def test_a_full_batch_is_split_under_the_size_bound_in_order():
    taps = [tap(i) for i in range(5000)]
    messages = encode(taps)
    assert len(messages) > 1
    assert all(len(m) <= MAX_MESSAGE_BYTES for m in messages)
    assert [t for m in messages for t in decode(m)] == taps


@pytest.mark.parametrize(
    "payload",
    [
        b"",
        b"[]",
        b'{"v": 2, "taps": []}',
        b'{"v": 1}',
        b'{"v": 1, "taps": [["site-00"]]}',
        b'{"v": 1, "taps": [["Site 0", "kiosk-01", 1, 1, "check_in", null, "P1", '
        b'"0190f5a2-1b3c-7d4e-8f60-000000000000", "04A1B2C3"]]}',
        b'{"v": 1, "taps": [["site-00", "kiosk-01", 1, 1, "meal", null, "P1", '
        b'"0190f5a2-1b3c-7d4e-8f60-000000000000", "04A1B2C3"]]}',
        b'{"v": 1, "taps": [["site-00", "kiosk-01", "1", 1, "check_in", null, "P1", '
        b'"0190f5a2-1b3c-7d4e-8f60-000000000000", "04A1B2C3"]]}',
    ],
)
def test_malformed_messages_are_refused_by_name(payload):
    with pytest.raises(InvalidPayload) as caught:
        decode(payload)
    assert caught.value.reason is Reason.SCHEMA


def test_the_worker_topic_is_one_level():
    assert stored_topic("ingest-1") == "warmcard/internal/v1/stored/ingest-1"
    with pytest.raises(ValueError):
        stored_topic("ingest/#")


def test_a_console_sees_every_tap_whichever_of_two_workers_stored_it(
    tmp_path, mosquitto, influxd, influx_db, topic_prefix
):
    ids = write_registry(tmp_path, topic_prefix)
    settings = make_settings(tmp_path, mosquitto, influxd, influx_db, topic_prefix)
    second = IngestWorker(settings.model_copy(update={"client_id": f"ingest2-{topic_prefix}"}))
    publisher = Publisher(mosquitto.port)
    events, expected = scenario(ids)
    # Enough taps that the broker spreads them over both workers: site B's people (P0007 to
    # P0010) coming and going all day.
    extra = EventMaker(ids["gate_b"], seq=100)
    for i in range(50):
        kind = Kind.CHECK_IN if i % 2 == 0 else Kind.CHECK_OUT
        events.append(extra.make(kind, f"P{7 + (i // 2) % 4:04d}"))
        expected[(ids["site_b"], kind.value)] += 1
    with Stack(settings) as stack:
        second.start()
        try:
            wait_for(second.consumer.subscribed.is_set)
            publisher.publish(events)
            wait_for(lambda: stack.worker.metrics.stored + second.metrics.stored == len(events))
            # The broker shared the stream: each worker stored part of it ...
            assert stack.worker.metrics.stored > 0 and second.metrics.stored > 0
            # ... and the console counted all of it, once.
            wait_for(lambda: stack.console.stored_taps == len(events))
            assert influx_counts(settings) == expected
            sites = stack.live.snapshot()["sites"]
            site_b = next(s for s in sites if s["site_id"] == ids["site_b"])
            checked_in = {e.person_id for e in events if e.device_id == ids["gate_b"]}
            assert site_b["arrivals"] == len(checked_in - {None}) == 4
        finally:
            second.stop()
            publisher.close()


def test_the_scenario_reaches_the_console_only_through_the_channel(
    tmp_path, mosquitto, influxd, influx_db, topic_prefix
):
    ids = write_registry(tmp_path, topic_prefix)
    settings = make_settings(tmp_path, mosquitto, influxd, influx_db, topic_prefix)
    publisher = Publisher(mosquitto.port)
    events, _ = scenario(ids)
    try:
        with Stack(settings) as stack:
            assert stack.worker.processor.live is None  # the worker keeps no live state
            publisher.publish(events)
            wait_for(lambda: stack.metrics.acked == len(events))
            check_live(stack, ids)
    finally:
        publisher.close()
