"""The contract fuzzer runs in CI on a small budget, and really catches what it is for."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from typing import Any

from tests.support.paths import REPO
from warmcard.contract import TapEvent, parse_event
from warmcard.rejections import Reason

_spec = importlib.util.spec_from_file_location("fuzz_contract", REPO / "bench" / "fuzz_contract.py")
assert _spec and _spec.loader
fuzz = importlib.util.module_from_spec(_spec)
sys.modules["fuzz_contract"] = fuzz  # dataclasses look their module up
_spec.loader.exec_module(fuzz)


def test_2000_fuzzed_payloads_give_events_or_named_reasons(tmp_path: Path) -> None:
    report = fuzz.run(2000, seed=7, out=tmp_path, slow_ms=250.0)
    assert report.failures == []
    assert report.payloads == 2000
    assert report.accepted + sum(report.reasons.values()) == 2000
    assert report.accepted > 100  # the generator still makes valid events
    assert set(report.reasons) <= {r.value for r in Reason}
    assert len(report.reasons) >= 15  # and reaches most rules
    assert not list(tmp_path.iterdir())


def test_the_harness_saves_inputs_that_crash_the_parser(tmp_path: Path) -> None:
    def crashing_parser(payload: bytes, topic: str, **_: Any) -> TapEvent:
        if b"NaN" in payload:
            raise KeyError("boom")
        return parse_event(payload, topic, **_)

    report = fuzz.run(3000, seed=7, out=tmp_path, parse=crashing_parser)
    assert report.failures and all("KeyError" in line for line in report.failures)
    saved = sorted(tmp_path.glob("crash-*.bin"))
    assert len(saved) == len(report.failures)
    assert b"NaN" in saved[0].read_bytes()
    why = json.loads(saved[0].with_suffix(".json").read_text())
    assert why["why"].startswith("KeyError") and why["topic"].startswith("warmcard/")


def test_the_harness_rejects_an_event_that_breaks_an_invariant(tmp_path: Path) -> None:
    # A parser that accepts what it should not (a lower-case UID) is a failure too.
    def lax_parser(payload: bytes, topic: str, **kw: Any) -> TapEvent:
        event = parse_event(payload, topic, **kw)
        return event.model_copy(update={"card_uid": event.card_uid.lower() + "\n"})

    report = fuzz.run(300, seed=3, out=tmp_path, parse=lax_parser)
    assert report.failures and all("AssertionError" in line for line in report.failures)
