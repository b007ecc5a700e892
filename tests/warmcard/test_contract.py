"""The wire contract: what is accepted, what is rejected and why."""

from __future__ import annotations

import json

import pytest

from warmcard.contract import Kind, TapEvent, events_topic, parse_event
from warmcard.rejections import InvalidPayload, Reason
from warmcard.timestamps import format_ts, new_event_id, now_us, parse_ts


def make_event(**overrides: object) -> dict[str, object]:
    ts = now_us()
    event: dict[str, object] = {
        "v": 1,
        "event_id": new_event_id(ts),
        "device_id": "k-001",
        "seq": 7,
        "ts": format_ts(ts),
        "card_uid": "04A1B2C3D4E5F6",
        "kind": "check_in",
        "person_id": "p-0001",
    }
    event.update(overrides)
    return event


def encode(event: dict[str, object]) -> bytes:
    return json.dumps(event).encode()


def test_valid_event_round_trips() -> None:
    raw = make_event()
    event = parse_event(encode(raw), events_topic("k-001"))
    assert event.kind is Kind.CHECK_IN
    assert parse_event(event.to_bytes(), events_topic("k-001")) == event


def test_timestamp_round_trips_at_microsecond_precision() -> None:
    ts = 1_795_933_086_123_456
    assert parse_ts(format_ts(ts)) == ts
    assert format_ts(ts).endswith(".123456Z")


def test_event_ids_are_uuid7_and_time_ordered() -> None:
    ids = [new_event_id(t) for t in (1_000_000_000_000, 1_000_000_001_000, 1_000_000_002_000)]
    assert ids == sorted(ids)
    assert all(i[14] == "7" for i in ids)


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"", Reason.EMPTY),
        (b"\xff\xfe", Reason.NOT_UTF8),
        (b"{nope", Reason.INVALID_JSON),
        (b"[1]", Reason.NOT_AN_OBJECT),
        (b'{"v":1,"v":1}', Reason.DUPLICATE_KEY),
        (b'{"v":NaN}', Reason.NON_FINITE_NUMBER),
        (b"{" + b" " * 5000 + b"}", Reason.TOO_LARGE),
        (b'{"v":2}', Reason.UNKNOWN_VERSION),
    ],
)
def test_malformed_payloads_name_their_reason(payload: bytes, reason: Reason) -> None:
    with pytest.raises(InvalidPayload) as info:
        parse_event(payload, events_topic("k-001"))
    assert info.value.reason is reason


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"seq": "7"}, Reason.SCHEMA),
        ({"seq": 0}, Reason.SCHEMA),
        ({"seq": True}, Reason.SCHEMA),
        ({"kind": "teleport"}, Reason.SCHEMA),
        ({"card_uid": "04A1B"}, Reason.SCHEMA),
        ({"ts": "2026-11-29T06:15:22Z"}, Reason.BAD_TS),
        ({"ts": 1795933086}, Reason.BAD_TS),
        ({"kind": "meal"}, Reason.INCONSISTENT),  # meal without a period
        ({"kind": "unknown_card"}, Reason.INCONSISTENT),  # unknown card with a person id
        ({"name": "王大妈"}, Reason.UNKNOWN_FIELD),  # names never travel
    ],
)
def test_schema_violations_are_rejected(overrides: dict[str, object], reason: Reason) -> None:
    with pytest.raises(InvalidPayload) as info:
        parse_event(encode(make_event(**overrides)), events_topic("k-001"))
    assert info.value.reason is reason


def test_device_in_payload_must_match_topic() -> None:
    with pytest.raises(InvalidPayload) as info:
        parse_event(encode(make_event()), events_topic("k-002"))
    assert info.value.reason is Reason.DEVICE_MISMATCH


def test_wrong_clocks_are_rejected() -> None:
    past = make_event(ts="1970-01-01T00:00:01.000000Z")
    future = make_event(ts="2100-01-01T00:00:00.000000Z")
    for raw, reason in ((past, Reason.CLOCK_PAST), (future, Reason.CLOCK_FUTURE)):
        with pytest.raises(InvalidPayload) as info:
            parse_event(encode(raw), events_topic("k-001"))
        assert info.value.reason is reason


def test_model_forbids_unknown_fields() -> None:
    with pytest.raises(ValueError):
        TapEvent.model_validate(make_event(extra=1))


def test_manual_meal_fields_are_omitted_unless_used() -> None:
    """v1.1 fields: a tap that does not use them is byte-identical to a v1.0 tap."""
    plain = parse_event(encode(make_event()), events_topic("k-001"))
    assert b"manual" not in plain.to_bytes() and b"witness_card" not in plain.to_bytes()
    manual = make_event(
        kind="meal", meal_period="lunch", manual=True, witness_card="04FFEE0102A0B0"
    )
    event = parse_event(encode(manual), events_topic("k-001"))
    assert event.manual and event.witness_card == "04FFEE0102A0B0"
    assert json.loads(event.to_bytes())["manual"] is True
    assert parse_event(event.to_bytes(), events_topic("k-001")) == event


@pytest.mark.parametrize(
    "overrides",
    [
        {"manual": True},  # no witness
        {"witness_card": "04FFEE01"},  # a witness without manual
        {"kind": "check_in", "meal_period": None, "manual": True, "witness_card": "04FFEE01"},
        {"manual": True, "witness_card": "04A1B2C3D4E5F6"},  # the elder's own card
    ],
)
def test_manual_meal_rules_are_inconsistent_when_broken(overrides: dict[str, object]) -> None:
    raw = make_event(**{"kind": "meal", "meal_period": "lunch", **overrides})
    raw = {k: v for k, v in raw.items() if v is not None}
    with pytest.raises(InvalidPayload) as caught:
        parse_event(encode(raw), events_topic("k-001"))
    assert caught.value.reason is Reason.INCONSISTENT


def test_manual_must_be_a_json_boolean() -> None:
    raw = make_event(kind="meal", meal_period="lunch", manual=1, witness_card="04FFEE01")
    with pytest.raises(InvalidPayload) as caught:
        parse_event(encode(raw), events_topic("k-001"))
    assert caught.value.reason is Reason.SCHEMA
