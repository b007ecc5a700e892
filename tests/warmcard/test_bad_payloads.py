"""Every class of bad event payload is rejected with its exact named reason, never a crash."""

from __future__ import annotations

import json
import pickle
import re
import time
from typing import Any

import pytest

from tests.support.paths import REPO
from warmcard.contract import (
    MAX_ROSTER_BYTES,
    MAX_SEQ,
    Roster,
    TapEvent,
    events_topic,
    parse_event,
    parse_model,
)
from warmcard.rejections import MAX_DETAIL_CHARS, InvalidPayload, Reason
from warmcard.timestamps import format_ts
from warmcard.wirejson import MAX_PAYLOAD_BYTES

# A fixed "now" at the cloud, so clock rules are tested without reading the real clock.
RECEIVED_US = 1_795_933_086_123_456  # 2026-11-29T03:38:06.123456Z
TOPIC = events_topic("k-001")
EVENT_ID = "019ad2f4-4b1e-7c3a-9f00-2b6c1d8e4a10"


def valid(**overrides: Any) -> dict[str, Any]:
    """A valid check_in as a JSON-ready dict; `...` as an override value drops that field."""
    event: dict[str, Any] = {
        "v": 1,
        "event_id": EVENT_ID,
        "device_id": "k-001",
        "seq": 4182,
        "ts": format_ts(RECEIVED_US - 5_000_000),
        "card_uid": "04A1B2C3D4E5F6",
        "kind": "check_in",
        "person_id": "p-7f3a91",
    }
    event.update(overrides)
    return {k: v for k, v in event.items() if v is not ...}


def enc(event: Any) -> bytes:
    return json.dumps(event, ensure_ascii=False).encode()


def rejection(payload: bytes, topic: str = TOPIC) -> InvalidPayload:
    with pytest.raises(InvalidPayload) as info:
        parse_event(payload, topic, received_us=RECEIVED_US)
    return info.value


VALID = enc(valid())

# (class id, payload, expected reason). Each id is one class of bad input.
CASES: list[tuple[str, bytes, Reason]] = [
    # --- bytes and encoding
    ("empty", b"", Reason.EMPTY),
    ("not_utf8", b"\xff\xfe\xfd", Reason.NOT_UTF8),
    ("utf8_overlong", b'{"v":1,"x":"\xc0\xaf"}', Reason.NOT_UTF8),
    ("utf8_truncated_multibyte", VALID[:-2] + b'"\xe7\x8e', Reason.NOT_UTF8),
    ("utf16", json.dumps(valid()).encode("utf-16"), Reason.NOT_UTF8),
    ("utf8_bom", b"\xef\xbb\xbf" + VALID, Reason.BOM),
    ("lone_surrogate_value", VALID.replace(b'"p-7f3a91"', b'"p\\ud800"'), Reason.NOT_UTF8),
    ("lone_low_surrogate_key", VALID[:-1] + b', "\\udc00": 1}', Reason.NOT_UTF8),
    # --- JSON syntax
    ("invalid_json", b"{nope", Reason.INVALID_JSON),
    ("truncated_json", VALID[: len(VALID) // 2], Reason.INVALID_JSON),
    ("trailing_data", VALID + b" {}", Reason.INVALID_JSON),
    ("single_quotes", VALID.replace(b'"', b"'"), Reason.INVALID_JSON),
    ("trailing_comma", VALID[:-1] + b",}", Reason.INVALID_JSON),
    ("raw_newline_in_string", VALID.replace(b"p-7f3a91", b"p-7f\n3a91"), Reason.INVALID_JSON),
    ("leading_zero_number", VALID.replace(b"4182", b"04182"), Reason.INVALID_JSON),
    ("hex_number", VALID.replace(b"4182", b"0x1056"), Reason.INVALID_JSON),
    ("comment", b"// event\n" + VALID, Reason.INVALID_JSON),
    # --- top level
    ("top_array", enc([valid()]), Reason.NOT_AN_OBJECT),
    ("top_string", b'"check_in"', Reason.NOT_AN_OBJECT),
    ("top_number", b"4182", Reason.NOT_AN_OBJECT),
    ("top_null", b"null", Reason.NOT_AN_OBJECT),
    ("top_bool", b"true", Reason.NOT_AN_OBJECT),
    # --- strict JSON rules
    ("duplicate_key_top", VALID[:-1] + b', "seq": 4183}', Reason.DUPLICATE_KEY),
    ("duplicate_key_same_value", VALID[:-1] + b', "seq": 4182}', Reason.DUPLICATE_KEY),
    ("duplicate_key_escaped", VALID[:-1] + b', "\\u0073eq": 4183}', Reason.DUPLICATE_KEY),
    ("duplicate_key_nested", VALID[:-1] + b', "x": {"a": 1, "a": 2}}', Reason.DUPLICATE_KEY),
    ("nan", VALID.replace(b"4182", b"NaN"), Reason.NON_FINITE_NUMBER),
    ("infinity", VALID.replace(b"4182", b"Infinity"), Reason.NON_FINITE_NUMBER),
    ("minus_infinity", VALID.replace(b"4182", b"-Infinity"), Reason.NON_FINITE_NUMBER),
    ("float_overflow", VALID.replace(b"4182", b"1e400"), Reason.HUGE_NUMBER),
    ("int_50_digits", VALID.replace(b"4182", b"9" * 50), Reason.HUGE_NUMBER),
    ("int_4000_digits", VALID.replace(b"4182", b"9" * 3700), Reason.HUGE_NUMBER),
    ("deep_nesting", VALID[:-1] + b', "x": {"a": {"b": {"c": {}}}}}', Reason.TOO_DEEP),
    ("deep_array_2000", b"[" * 2000 + b"]" * 2000, Reason.TOO_DEEP),
    ("deep_unclosed", b"[" * 4000, Reason.TOO_DEEP),
    ("deep_10000", b"[" * 10_000 + b"]" * 10_000, Reason.TOO_LARGE),  # size is checked first
    (
        "too_large",
        VALID[:-1] + b" " * (MAX_PAYLOAD_BYTES - len(VALID) + 1) + b"}",
        Reason.TOO_LARGE,
    ),
    # --- version
    ("v_missing", enc(valid(v=...)), Reason.MISSING_FIELD),
    ("v_2", enc(valid(v=2)), Reason.UNKNOWN_VERSION),
    ("v_string", enc(valid(v="1")), Reason.UNKNOWN_VERSION),
    ("v_true", enc(valid(v=True)), Reason.UNKNOWN_VERSION),
    ("v_float", enc(valid(v=1.0)), Reason.UNKNOWN_VERSION),
    # --- names and sites never travel; nothing unknown does
    ("unknown_field_name", enc(valid(name="王大妈")), Reason.UNKNOWN_FIELD),
    ("unknown_field_display_name", enc(valid(display_name="Wang")), Reason.UNKNOWN_FIELD),
    ("unknown_field_site", enc(valid(site_id="s-001")), Reason.UNKNOWN_FIELD),
    ("unknown_field_empty_key", enc(valid(**{"": 1})), Reason.UNKNOWN_FIELD),
    ("unknown_field_case", enc(valid(Seq=1)), Reason.UNKNOWN_FIELD),
    # --- cross-field rules
    ("meal_without_period", enc(valid(kind="meal")), Reason.INCONSISTENT),
    ("meal_repeat_without_period", enc(valid(kind="meal_repeat")), Reason.INCONSISTENT),
    ("period_on_check_in", enc(valid(meal_period="lunch")), Reason.INCONSISTENT),
    ("unknown_card_with_person", enc(valid(kind="unknown_card")), Reason.INCONSISTENT),
    ("check_in_without_person", enc(valid(person_id=...)), Reason.INCONSISTENT),
    ("check_out_person_null", enc(valid(kind="check_out", person_id=None)), Reason.INCONSISTENT),
    ("auto_on_check_in", enc(valid(auto=True)), Reason.INCONSISTENT),
    ("auto_on_meal", enc(valid(kind="meal", meal_period="lunch", auto=True)), Reason.INCONSISTENT),
    # --- topic and device
    ("device_mismatch", enc(valid(device_id="k-002")), Reason.DEVICE_MISMATCH),
    # --- clocks
    ("ts_1970", enc(valid(ts="1970-01-01T00:00:01.000000Z")), Reason.CLOCK_PAST),
    ("ts_just_before_2024", enc(valid(ts="2023-12-31T23:59:59.999999Z")), Reason.CLOCK_PAST),
    ("ts_year_0001", enc(valid(ts="0001-01-01T00:00:00.000000Z")), Reason.CLOCK_PAST),
    ("ts_2100", enc(valid(ts="2100-01-01T00:00:00.000000Z")), Reason.CLOCK_FUTURE),
    ("ts_301s_ahead", enc(valid(ts=format_ts(RECEIVED_US + 301_000_000))), Reason.CLOCK_FUTURE),
]

# Bad timestamps: every one of these is `bad_ts`.
BAD_TS = {
    "seconds_number": 1_795_933_086,
    "ms_number": 1_795_933_086_123,
    "ns_number": 1_795_933_086_123_456_789,
    "float_seconds": 1_795_933_086.123,
    "seconds_string": "1795933086",
    "ms_string": "1795933086123",
    "ns_string": "1795933086123456789",
    "no_z": "2026-11-29T03:38:01.123456",
    "offset_0800": "2026-11-29T11:38:01.123456+08:00",
    "offset_0000": "2026-11-29T03:38:01.123456+00:00",
    "no_fraction": "2026-11-29T03:38:01Z",
    "ms_fraction": "2026-11-29T03:38:01.123Z",
    "ns_fraction": "2026-11-29T03:38:01.123456789Z",
    "lower_t_z": "2026-11-29t03:38:01.123456z",
    "space_separator": "2026-11-29 03:38:01.123456Z",
    "feb_30": "2026-02-30T03:38:01.123456Z",
    "hour_24": "2026-11-29T24:00:00.000000Z",
    "leap_second": "2026-12-31T23:59:60.000000Z",
    "year_0000": "0000-01-01T00:00:00.000000Z",
    "fullwidth_digits": "２０２６-11-29T03:38:01.123456Z",
    "arabic_indic_digits": "٢٠٢٦-11-29T03:38:01.123456Z",
    "trailing_newline": "2026-11-29T03:38:01.123456Z\n",
    "null": None,
    "object": {"s": 1},
    "empty": "",
}

# Bad values per field: every one of these is `schema`.
BAD_VALUES: dict[str, list[Any]] = {
    "seq": ["4182", 4182.0, 4182.5, True, False, -1, 0, MAX_SEQ + 1, 2**64, None, [4182]],
    "kind": [1, "teleport", "CHECK_IN", "check_in ", None, ["check_in"]],
    "meal_period": ["brunch", "LUNCH", 1],
    "card_uid": [
        0x04A1B2C3D4E5F6,
        "04A1B2C3D4E5F",  # odd length
        "04G1B2C3D4E5F6",  # not hex
        "04a1b2c3d4e5f6",  # lower case: rejected, not normalised
        "04a1B2C3D4E5F6",  # mixed case
        "０４Ａ１B2C3D4E5F6",  # full-width
        "04A1B2C3D4",  # 5 bytes
        "04A1B2C3D4E5",  # 6 bytes
        "04A1B2C3D4E5F6A7B8C9D0",  # 11 bytes
        "04:A1:B2:C3:D4:E5:F6",
        "04-A1-B2-C3-D4-E5-F6",
        "04 A1 B2 C3 D4 E5 F6",
        "0x04A1B2C3D4E5F6",
        "",
        None,
    ],
    "event_id": [
        "6f1c9a52-9d1e-4c3a-9f00-2b6c1d8e4a10",  # UUIDv4
        EVENT_ID.upper(),
        "019ad2f4-4b1e-7c3a-cf00-2b6c1d8e4a10",  # variant 110 (Microsoft)
        "019ad2f4-4b1e-7c3a-7f00-2b6c1d8e4a10",  # variant 0 (NCS)
        EVENT_ID.replace("-", ""),
        "{" + EVENT_ID + "}",
        "urn:uuid:" + EVENT_ID,
        EVENT_ID[:-1],
        12345,
    ],
    "device_id": [
        "k-001/x",
        "k-001+",
        "k-001#",
        "k 001",
        "K-001",
        "k" * 64,
        "k",
        "-k001",
        "k_001",
        "k-00１",
        7,
    ],
    "person_id": [
        "p 7f3a91",
        "p-7f3a91\n",
        "p-7f3a91\r\nx",
        "",
        "-p7f3a91",
        "p" * 65,
        "王大妈",
        "p\U0001f600",  # an emoji: valid UTF-8, still not an id
        5,
    ],
    "auto": ["true", 1, 0, None],
    "clock_synced": ["false", 0, 1, None],
}

REQUIRED = ["event_id", "device_id", "seq", "ts", "card_uid", "kind"]

# Characters that would break or inject into InfluxDB line protocol or logs.
INJECTION = [
    "\n",
    "\r",
    ",",
    "=",
    " ",
    '"',
    "'",
    "\\",
    "\t",
    "\x00",
    "\x1b",
    "\x7f",
    "\u2028",
    "\u200b",
]
STRING_FIELDS = ["event_id", "device_id", "ts", "card_uid", "person_id", "kind", "meal_period"]


@pytest.mark.parametrize(("payload", "reason"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_payload_class_has_its_reason(payload: bytes, reason: Reason) -> None:
    assert rejection(payload).reason is reason


def test_the_valid_baseline_is_accepted() -> None:
    # Otherwise every "rejected" case above could be rejected for the baseline's own fault.
    event = parse_event(VALID, TOPIC, received_us=RECEIVED_US)
    assert event.person_id == "p-7f3a91"
    assert len({c[0] for c in CASES}) == len(CASES)


@pytest.mark.parametrize(("ts", "name"), [(v, k) for k, v in BAD_TS.items()], ids=list(BAD_TS))
def test_bad_timestamps_are_bad_ts(ts: Any, name: str) -> None:
    assert rejection(enc(valid(ts=ts))).reason is Reason.BAD_TS, name


@pytest.mark.parametrize(
    ("field", "value"),
    [(f, v) for f, values in BAD_VALUES.items() for v in values],
    ids=[f"{f}={v!r}"[:60] for f, values in BAD_VALUES.items() for v in values],
)
def test_bad_field_values_are_schema_errors(field: str, value: Any) -> None:
    error = rejection(enc(valid(**{field: value})))
    assert error.reason is Reason.SCHEMA
    assert error.detail.startswith(field)


@pytest.mark.parametrize("field", REQUIRED)
def test_each_missing_required_field_is_named(field: str) -> None:
    error = rejection(enc(valid(**{field: ...})))
    assert error.reason is Reason.MISSING_FIELD
    assert field in error.detail


@pytest.mark.parametrize("field", STRING_FIELDS)
@pytest.mark.parametrize("char", INJECTION, ids=[repr(c) for c in INJECTION])
@pytest.mark.parametrize("where", ["end", "middle"])
def test_tag_injection_never_passes(field: str, char: str, where: str) -> None:
    base = valid(kind="meal", meal_period="lunch")
    value = base[field]
    base[field] = value + char if where == "end" else value[:3] + char + value[3:]
    error = rejection(enc(base))
    expected = Reason.BAD_TS if field == "ts" else Reason.SCHEMA
    assert error.reason is expected
    assert error.detail.isprintable()


@pytest.mark.parametrize(
    "topic",
    [
        "",
        "warmcard/v1/devices/k-001",
        "warmcard/v1/devices/k-001/events/extra",
        "warmcard/v1/devices/k-001/status",
        "warmcard/v1/devices/k-001/config",
        "warmcard/v2/devices/k-001/events",
        "Warmcard/v1/devices/k-001/events",
        "/warmcard/v1/devices/k-001/events",
        "warmcard/v1/devices//events",
        "warmcard/v1/devices/+/events",
        "warmcard/v1/devices/#",
        "$share/ingest/warmcard/v1/devices/k-001/events",
        "warmcard/v1/devices/K-001/events",
        "warmcard/v1/devices/k 001/events",
        "warmcard/v1/devices/k-001\n/events",
        "warmcard/v1/devices/k-00１/events",
        "warmcard/v1/devices/" + "k" * 64 + "/events",
        "warmcard/v1/devices/k-001/events\x00",
    ],
)
def test_malformed_topics_are_bad_topic(topic: str) -> None:
    error = rejection(VALID, topic)
    assert error.reason is Reason.BAD_TOPIC
    assert error.detail.isprintable()


@pytest.mark.parametrize(
    "event",
    [
        valid(),
        valid(kind="check_out", auto=True),
        valid(kind="meal", meal_period="dinner", clock_synced=False),
        valid(kind="unknown_card", person_id=None, card_uid="04A1B2C3"),
        valid(kind="unknown_card", person_id=..., card_uid="04A1B2C3D4E5F6A7B8C9"),
        valid(seq=1),
        valid(seq=MAX_SEQ),
        valid(ts="2024-01-01T00:00:00.000000Z"),
        valid(ts=format_ts(RECEIVED_US + 300_000_000)),
        valid(device_id="k" * 63),
        valid(person_id="P_" + "x" * 62),
    ],
    ids=[
        "check_in",
        "auto_check_out",
        "meal_unsynced",
        "unknown_card_null_person",
        "unknown_card_10_byte_uid",
        "seq_1",
        "seq_max",
        "ts_2024",
        "ts_300s_ahead",
        "device_id_63",
        "person_id_64",
    ],
)
def test_boundary_events_are_accepted(event: dict[str, Any]) -> None:
    parsed = parse_event(enc(event), events_topic(event["device_id"]), received_us=RECEIVED_US)
    dumped = json.loads(parsed.to_bytes())
    assert {k: v for k, v in dumped.items() if k in event} == event


def test_payload_exactly_at_the_limit_is_accepted() -> None:
    padded = VALID[:-1] + b" " * (MAX_PAYLOAD_BYTES - len(VALID)) + b"}"
    assert len(padded) == MAX_PAYLOAD_BYTES
    assert parse_event(padded, TOPIC, received_us=RECEIVED_US).seq == 4182


def test_json_escapes_of_valid_characters_are_accepted() -> None:
    # "\u002d" is "-": JSON-equivalent spellings of a valid event are the same event.
    escaped = VALID.replace(b'"k-001"', b'"k\\u002d001"')
    assert parse_event(escaped, TOPIC, received_us=RECEIVED_US).device_id == "k-001"


def test_brackets_inside_strings_do_not_count_as_nesting() -> None:
    payload = enc(valid(person_id="[[[[[[[[{{{{{{{{"))
    assert rejection(payload).reason is Reason.SCHEMA  # the pattern, not too_deep


def test_a_paired_surrogate_escape_is_valid_unicode_but_not_an_id() -> None:
    payload = VALID.replace(b'"p-7f3a91"', b'"p\\ud83d\\ude00"')
    assert rejection(payload).reason is Reason.SCHEMA


def test_10000_deep_nesting_in_a_large_payload_is_too_deep_not_recursion_error() -> None:
    # A kiosk reads its cached roster with an 8 MiB limit, so depth (not size) must stop this.
    for payload in (b"[" * 10_000 + b"]" * 10_000, b'{"v":1,"a":' + b"[" * 100_000):
        with pytest.raises(InvalidPayload) as info:
            parse_model(Roster, payload, limit=MAX_ROSTER_BYTES)
        assert info.value.reason is Reason.TOO_DEEP


@pytest.mark.parametrize(
    ("name", "payload"),
    [
        ("unclosed_escaped_quotes", b'[[[[["' + b'\\"' * 500_000),
        ("many_strings", b'{"v":1,"a":[' + b'"[[",' * 200_000 + b'""]}'),
        ("huge_int", b'{"v":1,"n":' + b"9" * 1_000_000 + b"}"),
        ("many_surrogate_escapes", b'{"v":1,"a":"' + b"\\ud83d\\ude00" * 80_000 + b'"}'),
        ("many_keys", b"{" + b",".join(b'"k%d":1' % i for i in range(80_000)) + b"}"),
    ],
)
def test_pathological_megabyte_payloads_never_stall(name: str, payload: bytes) -> None:
    start = time.perf_counter()
    with pytest.raises(InvalidPayload):
        parse_model(Roster, payload, limit=MAX_ROSTER_BYTES)
    assert time.perf_counter() - start < 1.0, name


def test_details_are_short_printable_and_the_error_pickles() -> None:
    error = rejection(VALID[:-1] + b', "\\u0000' + b"x" * 2000 + b'": 1}')
    assert error.reason is Reason.UNKNOWN_FIELD
    assert error.detail.isprintable() and len(error.detail) <= MAX_DETAIL_CHARS
    error.detail.encode("utf-8")
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.reason, copy.detail, str(copy)) == (error.reason, error.detail, str(error))
    assert str(error).startswith("unknown_field: ")


def test_the_model_rejects_the_same_junk_when_built_in_python() -> None:
    # The kiosk builds TapEvent directly; the anchored patterns apply there too.
    fields = valid()
    fields["card_uid"] = "04A1B2C3D4E5F6\n"
    with pytest.raises(ValueError):
        TapEvent.model_validate(fields)


def test_every_reason_is_documented_in_the_protocol_table() -> None:
    doc = (REPO / "docs" / "protocol.md").read_text()
    table = set(re.findall(r"^\| `([a-z0-9_]+)` \|", doc, flags=re.M))
    assert {r.value for r in Reason} <= table


def _reasons_produced() -> set[Reason]:
    return {c[2] for c in CASES} | {Reason.BAD_TS, Reason.SCHEMA, Reason.MISSING_FIELD}


def test_every_reason_parse_event_can_give_has_a_case() -> None:
    consumer_only = {Reason.UNKNOWN_DEVICE, Reason.RETAINED, Reason.QOS0, Reason.CONFLICT}
    assert _reasons_produced() | {Reason.BAD_TOPIC} == set(Reason) - consumer_only
