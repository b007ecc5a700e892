"""Properties of the wire contract for all inputs, not just the examples we thought of.

Profiles: `dev` (random, default) and `ci` (derandomized, no example database), chosen by
WARMCARD_HYPOTHESIS_PROFILE, or `ci` when the CI variable is set.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
import uuid
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.paths import REPO
from warmcard.contract import (
    MAX_SEQ,
    MEAL_KINDS,
    Kind,
    MealPeriod,
    TapEvent,
    events_topic,
    parse_event,
)
from warmcard.ids import CARD_UID_RE, DEVICE_ID_RE, EVENT_ID_RE, PERSON_ID_RE
from warmcard.rejections import InvalidPayload
from warmcard.timestamps import MAX_TS_US, MIN_TS_US, format_ts, new_event_id, parse_ts

_spec = importlib.util.spec_from_file_location("fuzz_contract", REPO / "bench" / "fuzz_contract.py")
assert _spec and _spec.loader
fuzz = importlib.util.module_from_spec(_spec)
sys.modules["fuzz_contract"] = fuzz  # dataclasses look their module up
_spec.loader.exec_module(fuzz)

settings.register_profile(
    "ci", max_examples=150, derandomize=True, database=None, deadline=None, print_blob=True
)
settings.register_profile("dev", max_examples=150, deadline=None)
PROFILE = settings(
    settings.get_profile(
        os.environ.get("WARMCARD_HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev")
    ),
    suppress_health_check=[HealthCheck.too_slow],
)

RECEIVED_US = fuzz.RECEIVED_US


@st.composite
def tap_events(draw: st.DrawFn) -> TapEvent:
    ts_us = draw(st.integers(fuzz.EARLIEST_US, fuzz.LATEST_US))
    kind = draw(st.sampled_from(Kind))
    return TapEvent(
        event_id=new_event_id(ts_us),
        device_id=draw(st.from_regex(DEVICE_ID_RE, fullmatch=True)),
        seq=draw(st.integers(1, MAX_SEQ)),
        ts=format_ts(ts_us),
        card_uid=draw(st.from_regex(CARD_UID_RE, fullmatch=True)),
        kind=kind,
        meal_period=draw(st.sampled_from(MealPeriod)) if kind in MEAL_KINDS else None,
        person_id=(
            None if kind is Kind.UNKNOWN_CARD else draw(st.from_regex(PERSON_ID_RE, fullmatch=True))
        ),
        auto=draw(st.booleans()) if kind is Kind.CHECK_OUT else False,
        clock_synced=draw(st.booleans()),
    )


# Any text, lone surrogates and control characters included.
any_text = st.text(st.characters(exclude_categories=[]), max_size=30) | st.sampled_from(
    ["\ud800", "\udfff", "\x00", "\ufeff", "\n", "０４Ａ１"]
)
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | any_text,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(any_text, children, max_size=4)
    ),
    max_leaves=12,
)
FIELDS = list(TapEvent.model_fields)


def _outcome(payload: bytes, topic: str) -> str:
    """parse_event's verdict; any exception but InvalidPayload propagates and fails the test."""
    return fuzz.fuzz_one(payload, topic)


@PROFILE
@given(tap_events())
def test_valid_events_round_trip(event: TapEvent) -> None:
    topic = events_topic(event.device_id)
    assert parse_event(event.to_bytes(), topic, received_us=RECEIVED_US) == event
    fuzz.check_event(event, topic)


@PROFILE
@given(st.binary(max_size=600), st.sampled_from(["k-001", "k-002"]))
def test_arbitrary_bytes_give_an_event_or_a_reason(payload: bytes, device: str) -> None:
    _outcome(payload, events_topic(device))


@PROFILE
@given(json_values)
def test_arbitrary_json_values_give_an_event_or_a_reason(value: Any) -> None:
    payload = json.dumps(value).encode("utf-8", "surrogatepass")
    assert _outcome(payload, events_topic("k-001")) != "accepted"


@PROFILE
@given(
    tap_events(),
    st.lists(
        st.tuples(st.sampled_from([*FIELDS, "name", ""]), st.none() | json_values), max_size=3
    ),
    st.lists(st.tuples(st.integers(0, 400), st.binary(max_size=3)), max_size=2),
    st.booleans(),
)
def test_mutated_valid_events_give_an_event_or_a_reason(
    event: TapEvent,
    edits: list[tuple[str, Any]],
    splices: list[tuple[int, bytes]],
    ascii_only: bool,
) -> None:
    data = json.loads(event.to_bytes())
    for key, value in edits:
        if value is None and key in data:
            del data[key]
        else:
            data[key] = value
    raw = json.dumps(data, ensure_ascii=ascii_only).encode("utf-8", "surrogatepass")
    for pos, chunk in splices:
        raw = raw[:pos] + chunk + raw[pos + len(chunk) :]
    _outcome(raw, events_topic(event.device_id))


@PROFILE
@given(any_text, st.binary(max_size=80))
def test_arbitrary_topics_give_an_event_or_a_reason(topic: str, payload: bytes) -> None:
    _outcome(payload, topic)


@PROFILE
@given(st.integers(MIN_TS_US, MAX_TS_US))
def test_timestamps_round_trip_over_the_whole_range(ts_us: int) -> None:
    text = format_ts(ts_us)
    assert len(text) == 27 and text.isascii()
    assert parse_ts(text) == ts_us


@PROFILE
@given(st.integers(MIN_TS_US, MAX_TS_US - 1))
def test_timestamp_text_sorts_like_time(ts_us: int) -> None:
    assert format_ts(ts_us) < format_ts(ts_us + 1)


def test_timestamp_range_edges() -> None:
    assert format_ts(MIN_TS_US) == "0001-01-01T00:00:00.000000Z"
    assert format_ts(MAX_TS_US) == "9999-12-31T23:59:59.999999Z"
    assert format_ts(-1) == "1969-12-31T23:59:59.999999Z"
    for outside in (MIN_TS_US - 1, MAX_TS_US + 1):
        try:
            format_ts(outside)
        except ValueError:
            continue
        raise AssertionError(f"{outside} formatted")


@PROFILE
@given(st.integers(0, 2**48 * 1000 - 1))
def test_new_event_id_is_uuid7_with_the_time_prefix(ts_us: int) -> None:
    event_id = new_event_id(ts_us)
    assert EVENT_ID_RE.fullmatch(event_id)
    parsed = uuid.UUID(event_id)
    assert parsed.version == 7 and parsed.variant == uuid.RFC_4122
    assert parsed.int >> 80 == ts_us // 1000


def test_invalid_payload_is_the_only_exception_for_a_known_crasher_class() -> None:
    # Regression: json.loads succeeded at ~500-900 levels, then a recursive depth walk crashed.
    payload = b'{"v":1,"a":' + b"[" * 900 + b"]" * 900 + b"}"
    try:
        parse_event(payload, events_topic("k-001"))
    except InvalidPayload as error:
        assert error.reason.value == "too_deep"
    else:
        raise AssertionError("accepted")
