"""parse_event's msgspec fast path decides nothing: it takes only what the full checks take,
as the same TapEvent, and leaves everything else (and every reason) to them."""

from __future__ import annotations

import itertools
import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.warmcard.test_contract_properties import PROFILE, fuzz, tap_events
from warmcard import contract
from warmcard.contract import Kind, TapEvent, events_topic, parse_event
from warmcard.rejections import InvalidPayload
from warmcard.timestamps import parse_ts


def _full(payload: bytes) -> TapEvent | InvalidPayload:
    try:
        return contract._full_event(payload)
    except InvalidPayload as exc:
        return exc


def _assert_same_event(fast: TapEvent, full: TapEvent) -> None:
    assert fast == full
    cached = dict(fast.__dict__)
    assert cached.pop("ts_us") == parse_ts(full.ts)
    assert list(cached.items()) == list(full.__dict__.items())  # order: the serialised form
    assert [type(v) for v in cached.values()] == [type(v) for v in full.__dict__.values()]
    assert fast.model_fields_set == full.model_fields_set
    assert type(fast.model_fields_set) is type(full.model_fields_set)  # model_copy updates it
    assert fast.to_bytes() == full.to_bytes()
    assert fast.model_dump() == full.model_dump()
    # What pydantic's own unvalidated constructor makes of the same values.
    built = TapEvent.model_construct(full.model_fields_set, **full.__dict__)
    assert built.__dict__ == full.__dict__ and built == fast


def _agree(payload: bytes) -> str:
    """Check one payload both ways; 'fast', 'full' (taken only there) or 'rejected'."""
    fast = contract._fast_event(payload)
    full = _full(payload)
    if fast is not None:
        assert isinstance(full, TapEvent), (payload, full)
        _assert_same_event(fast, full)
        return "fast"
    return "full" if isinstance(full, TapEvent) else "rejected"


def test_the_fuzz_corpus_gets_the_same_events_and_reasons_both_ways(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    corpus = list(itertools.islice(fuzz.payloads(11), 6000))
    seen = [_agree(payload) for payload, _ in corpus]
    assert seen.count("fast") > 500 and seen.count("rejected") > 3000

    def outcomes() -> list[str]:
        found = []
        for payload, topic in corpus:
            try:
                event = parse_event(payload, topic, received_us=fuzz.RECEIVED_US)
            except InvalidPayload as exc:
                found.append(f"{exc.reason.value}: {exc.detail}")
            else:
                found.append(event.to_bytes().decode())
        return found

    with_fast = outcomes()
    monkeypatch.setattr(contract, "_fast_event", lambda payload: None)
    assert outcomes() == with_fast


@PROFILE
@given(tap_events())
def test_valid_events_take_the_fast_path_as_themselves(event: TapEvent) -> None:
    payload = event.to_bytes()
    assert _agree(payload) == "fast"
    assert parse_event(
        payload, events_topic(event.device_id), received_us=fuzz.RECEIVED_US + 10**15
    )


@PROFILE
@given(tap_events(), st.data())
def test_rewritten_events_agree(event: TapEvent, data: st.DataObject) -> None:
    doc: dict[str, Any] = json.loads(event.to_bytes())
    name = data.draw(st.sampled_from(sorted(doc)))
    value = data.draw(
        st.one_of(
            st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=30),
            st.just(f"{doc[name]}\n"), st.just([doc[name]]), st.just(str(doc[name]).upper()),
        )
    )  # fmt: skip
    doc[name] = value
    for payload in (json.dumps(doc).encode(), json.dumps(doc, separators=(",", ":")).encode()):
        _agree(payload)


VALID = TapEvent(
    event_id="01a22a15-79a7-7a6e-98ed-538b2088fa53",
    device_id="k-001",
    seq=17,
    ts="2026-11-30T01:33:00.199702Z",
    card_uid="04000011A1B2C3",
    kind=Kind.CHECK_IN,
    person_id="p-17",
).to_bytes()


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        # msgspec keeps a duplicate's last value; the full checks refuse it.
        (VALID[:-1] + b',"seq":18}', "duplicate_key"),
        (VALID[:-1] + b',"seq" :18}', "duplicate_key"),
        (VALID.replace(b'"v":1', b'"v":1,"v":1'), "duplicate_key"),
        (b"\xef\xbb\xbf" + VALID, "bom"),
        (VALID[:-1] + b" " * 4096 + b"}", "too_large"),
        (VALID.replace(b'"k-001"', b'"k-001\\n"'), "schema"),  # Python's `$` takes a final \n
        (VALID.replace(b'"seq":17', b'"seq":17.0'), "schema"),
        (VALID.replace(b'"v":1', b'"v":true'), "unknown_version"),
        (VALID.replace(b'"auto":false', b'"auto":0'), "schema"),
        (VALID.replace(b'"ts":"2026-11-30', b'"ts":"2026-02-30'), "bad_ts"),
        (VALID.replace(b'"kind":"check_in"', b'"kind":"meal"'), "inconsistent"),
        (VALID.replace(b'"person_id":"p-17"', b'"person_id":"p-17","name":"x"'), "unknown_field"),
    ],
)
def test_what_the_fast_path_must_not_take(payload: bytes, reason: str) -> None:
    assert contract._fast_event(payload) is None
    full = _full(payload)
    assert isinstance(full, InvalidPayload) and full.reason.value == reason


def test_spacing_before_a_colon_goes_the_full_way_and_is_still_taken() -> None:
    spaced = VALID.replace(b'"seq":', b'"seq" :')
    assert _agree(spaced) == "full"
    assert _agree(VALID) == "fast"
