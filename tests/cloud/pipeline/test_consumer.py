# mypy: allow-untyped-defs
"""The consumer against real Mosquitto and InfluxDB: exact counts, no doubles, no losses."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from cloud_ingest.pipeline.influx import InfluxV1
from cloud_ingest.registry.importer import import_csv
from cloud_ingest.registry.store import Registry
from tests.support.ingest import (
    EventMaker,
    Publisher,
    check_live,
    influx_counts,
    make_settings,
    scenario,
    today_base_us,
    wait_for,
    write_registry,
)
from tests.support.stack import Stack
from warmcard.contract import (
    DeviceConfig,
    Kind,
    Mode,
    Roster,
    TapEvent,
    config_topic,
    events_topic,
    parse_model,
    roster_topic,
)
from warmcard.rejections import Reason
from warmcard.timestamps import format_ts, new_event_id, now_us


@pytest.fixture
def env(tmp_path, mosquitto, influxd, influx_db, topic_prefix):
    ids = write_registry(tmp_path, topic_prefix)
    settings = make_settings(tmp_path, mosquitto, influxd, influx_db, topic_prefix)
    return ids, settings


@pytest.fixture
def publisher(mosquitto) -> Iterator[Publisher]:
    pub = Publisher(mosquitto.port)
    yield pub
    pub.close()


def start(settings) -> Stack:
    service = Stack(settings)
    service.start()
    wait_for(service.consumer.subscribed.is_set)
    return service


@contextmanager
def influxdb_down(influxd) -> Iterator[None]:
    """InfluxDB stopped for the block and started again however the block ends."""
    influxd.stop()
    try:
        yield
    finally:
        influxd.start()


def test_events_land_with_exact_counts_and_live_numbers(env, publisher):
    ids, settings = env
    events, expected = scenario(ids)
    service = start(settings)
    try:
        publisher.publish(events)
        wait_for(lambda: influx_counts(settings) == expected)
        wait_for(lambda: service.metrics.acked == len(events))
        check_live(service, ids)
        # A fresh rebuild from InfluxDB gives the same numbers as the incremental path.
        service.live.rebuild()
        check_live(service, ids)
    finally:
        service.stop()


def test_same_events_published_three_times_change_nothing(env, publisher):
    ids, settings = env
    events, expected = scenario(ids)
    service = start(settings)
    try:
        for _ in range(3):
            publisher.publish(events)
        wait_for(lambda: service.metrics.acked == 3 * len(events))
        assert influx_counts(settings) == expected
        check_live(service, ids)
        service.live.rebuild()
        check_live(service, ids)
    finally:
        service.stop()


def test_invalid_messages_are_dead_lettered_and_good_ones_still_arrive(
    env, publisher, topic_prefix
):
    ids, settings = env
    gate = EventMaker(ids["gate_a"])
    service = start(settings)
    try:
        topic = events_topic(ids["gate_a"])
        publisher.publish_raw(topic, b"{not json")
        publisher.publish_raw(topic, b"")
        publisher.publish_raw(topic, gate.make(Kind.CHECK_IN, "P0001").to_bytes(), retain=True)
        publisher.publish_raw(topic, gate.make(Kind.CHECK_IN, "P0002").to_bytes(), qos=0)
        stranger = EventMaker(f"{topic_prefix}-stranger").make(Kind.CHECK_IN, "P0001")
        publisher.publish_raw(events_topic(stranger.device_id), stranger.to_bytes())
        mismatch = gate.make(Kind.CHECK_IN, "P0003")
        publisher.publish_raw(events_topic(ids["gate_b"]), mismatch.to_bytes())
        good = [gate.make(Kind.CHECK_IN, "P0004"), gate.make(Kind.CHECK_IN, "P0005")]
        publisher.publish(good)
        wait_for(lambda: influx_counts(settings) == Counter({(ids["site_a"], "check_in"): 2}))
        expected = {
            Reason.INVALID_JSON: 1,
            Reason.EMPTY: 1,
            Reason.RETAINED: 1,
            Reason.QOS0: 1,
            Reason.UNKNOWN_DEVICE: 1,
            Reason.DEVICE_MISMATCH: 1,
        }
        wait_for(lambda: service.deadletters.counts() == {r.value: n for r, n in expected.items()})
        assert dict(service.metrics.dead_letters) == {r.value: n for r, n in expected.items()}
        letter = service.deadletters.list(1, reason=Reason.INVALID_JSON)[0]
        assert letter.payload == b"{not json" and letter.topic == topic
        assert letter.id is not None and service.deadletters.get(letter.id) == letter
        # Every QoS 1 message was acked (the QoS 0 one needs none), the bad ones included.
        wait_for(lambda: service.metrics.acked == 7)
    finally:
        publisher.publish_raw(events_topic(ids["gate_a"]), b"", retain=True)  # clear retained
        service.stop()


def test_influxdb_down_holds_everything_unacked_then_all_arrive_once(env, publisher, influxd):
    ids, settings = env
    events, expected = scenario(ids)
    service = start(settings)
    try:
        with influxdb_down(influxd):
            publisher.publish(events)
            wait_for(lambda: service.metrics.write_retries >= 2)
            assert service.metrics.acked == 0
            assert service.metrics.storage_ok is False
            assert service.live.snapshot()["sites"][0]["arrivals"] == 0
        wait_for(lambda: service.metrics.acked == len(events), timeout=20)
        assert influx_counts(settings) == expected
        check_live(service, ids)
    finally:
        service.stop()


def test_restart_while_influxdb_down_loses_nothing(env, publisher, influxd):
    """Held-unacked messages are redelivered to the next run of ingest (same client id)."""
    ids, settings = env
    events, expected = scenario(ids)
    service = start(settings)
    try:
        with influxdb_down(influxd):
            publisher.publish(events)
            wait_for(lambda: service.metrics.write_retries >= 1)
            service.stop()
        assert influx_counts(settings) == Counter()
        service = start(settings)
        wait_for(lambda: influx_counts(settings) == expected)
        wait_for(lambda: service.metrics.acked >= len(events))
        check_live(service, ids)
    finally:
        service.stop()


def test_persistent_session_delivers_what_was_queued_while_away(env, publisher):
    ids, settings = env
    events, expected = scenario(ids)
    service = start(settings)
    service.stop()  # subscription and session stay on the broker
    publisher.publish(events)
    service = start(settings)
    try:
        wait_for(lambda: influx_counts(settings) == expected)
        check_live(service, ids)
    finally:
        service.stop()


def test_point_refused_by_influxdb_is_dead_lettered_others_stored(env, publisher):
    """A field-type conflict in an old shard refuses one backlog event; today's still land."""
    ids, settings = env
    old_us = now_us() - 20 * 86400 * 1_000_000
    storage = InfluxV1(settings.influx)
    storage.write([f'taps,device=legacy,kind=check_in,site=x seq="text" {old_us - 5}'])
    storage.close()
    gate = EventMaker(ids["gate_a"])
    old = TapEvent(
        event_id=new_event_id(old_us),
        device_id=ids["gate_b"],
        seq=1,
        ts=format_ts(old_us),
        card_uid="04A1B207",
        kind=Kind.CHECK_IN,
        person_id="P0007",
    )
    today = [gate.make(Kind.CHECK_IN, f"P000{i}") for i in range(1, 5)]
    service = start(settings)
    try:
        publisher.publish([*today[:2], old, *today[2:]])
        wait_for(lambda: service.deadletters.counts() == {"conflict": 1})
        wait_for(lambda: service.metrics.acked == 5)
        assert influx_counts(settings)[(ids["site_a"], "check_in")] == 4
        letter = service.deadletters.list(1)[0]
        assert letter.payload == old.to_bytes() and "conflict" in letter.detail
        # The old-day event never reaches today's live numbers.
        site_b = next(s for s in service.live.snapshot()["sites"] if s["site_id"] == ids["site_b"])
        assert site_b["arrivals"] == 0
    finally:
        service.stop()


def test_old_day_backlog_is_stored_but_not_counted_today(env, publisher):
    ids, settings = env
    old_us = today_base_us() - 2 * 86400 * 1_000_000
    backlog = EventMaker(ids["gate_b"], base_us=old_us)
    old_events = [backlog.make(Kind.CHECK_IN, "P0007"), backlog.make(Kind.CHECK_IN, "P0008")]
    today = EventMaker(ids["gate_b"], base_us=today_base_us(), seq=backlog.seq)
    new_events = [today.make(Kind.CHECK_IN, "P0009")]
    service = start(settings)
    try:
        publisher.publish(old_events + new_events)
        wait_for(lambda: influx_counts(settings) == Counter({(ids["site_b"], "check_in"): 3}))
        wait_for(lambda: service.metrics.acked == 3)

        def site_b() -> dict:
            return next(
                s for s in service.live.snapshot()["sites"] if s["site_id"] == ids["site_b"]
            )

        assert (site_b()["arrivals"], site_b()["present"]) == (1, 1)
        service.live.rebuild()
        assert (site_b()["arrivals"], site_b()["present"]) == (1, 1)
    finally:
        service.stop()


def test_config_and_roster_are_published_retained_and_after_import(env, mosquitto, tmp_path):
    ids, settings = env
    received: dict[str, bytes] = {}
    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    client.on_message = lambda c, u, m: received.__setitem__(m.topic, bytes(m.payload))
    client.connect("127.0.0.1", mosquitto.port)
    client.subscribe([(config_topic(ids["canteen_a"]), 1), (roster_topic(ids["canteen_a"]), 1)])
    client.loop_start()
    service = start(settings)
    try:
        wait_for(lambda: len(received) == 2)
        config = parse_model(DeviceConfig, received[config_topic(ids["canteen_a"])])
        assert (config.site_id, config.mode, config.debounce_s) == (ids["site_a"], Mode.CANTEEN, 5)
        roster = parse_model(Roster, received[roster_topic(ids["canteen_a"])])
        assert len(roster.entries) == 6 and roster.site_id == ids["site_a"]
        # A new card imported by another process reaches the kiosk without restarting ingest.
        (tmp_path / "more.csv").write_text("card_uid,person_id\n04C0FFEE,P0002\n", encoding="utf-8")
        registry = Registry(settings.registry_path)
        import_csv(registry, cards=tmp_path / "more.csv")
        registry.close()
        wait_for(
            lambda: len(parse_model(Roster, received[roster_topic(ids["canteen_a"])]).entries) == 7
        )
    finally:
        service.stop()
        client.disconnect()
        client.loop_stop()
        # Leave no retained downlink behind on the shared broker.
        cleaner = Publisher(mosquitto.port)
        for device in (ids["gate_a"], ids["canteen_a"], ids["gate_b"]):
            cleaner.publish_raw(config_topic(device), b"", retain=True)
            cleaner.publish_raw(roster_topic(device), b"", retain=True)
        cleaner.close()


def test_backpressure_broker_stops_at_receive_maximum(
    tmp_path, mosquitto, influxd, influx_db, topic_prefix, publisher
):
    """With InfluxDB down, at most ReceiveMaximum messages are out of the broker."""
    ids = write_registry(tmp_path, topic_prefix)
    settings = make_settings(
        tmp_path, mosquitto, influxd, influx_db, topic_prefix, receive_maximum=20, batch_max=10
    )
    gate = EventMaker(ids["gate_a"])
    events = [gate.make(Kind.CHECK_IN, f"P{i % 6 + 1:04d}") for i in range(60)]
    service = start(settings)
    try:
        with influxdb_down(influxd):
            publisher.publish(events)
            in_hand = lambda: service.metrics.received + service.consumer.pending  # noqa: E731
            wait_for(lambda: in_hand() == 20)
            wait_for(lambda: service.metrics.write_retries >= 3)
            assert in_hand() == 20 and service.metrics.acked == 0
        wait_for(lambda: service.metrics.acked == 60, timeout=30)
        assert influx_counts(settings) == Counter({(ids["site_a"], "check_in"): 60})
    finally:
        service.stop()


def test_consumer_reconnects_after_broker_restart(env, mosquitto):
    ids, settings = env
    events, expected = scenario(ids)
    service = start(settings)
    try:
        mosquitto.stop()
        wait_for(lambda: not service.consumer.connected.is_set())
        mosquitto.start()
        wait_for(service.consumer.subscribed.is_set, timeout=20)
        publisher = Publisher(mosquitto.port)
        try:
            publisher.publish(events)
        finally:
            publisher.close()
        wait_for(lambda: influx_counts(settings) == expected)
        check_live(service, ids)
    finally:
        service.stop()
