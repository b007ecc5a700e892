"""Synthetic tap events shared by the benchmarks: realistic sizes, valid against the contract."""

from __future__ import annotations

from warmcard.contract import Kind, TapEvent
from warmcard.timestamps import format_ts, new_event_id, now_us

SIX_HOURS_US = 6 * 3600 * 1_000_000


def bench_start_us() -> int:
    """A start time safely in the past (the cloud refuses future event times)."""
    return now_us() - SIX_HOURS_US


def bench_event(device: str, seq: int, ts_us: int) -> TapEvent:
    """A check-in with a plausible 7-byte UID and person id."""
    return TapEvent(
        event_id=new_event_id(ts_us),
        device_id=device,
        seq=seq,
        ts=format_ts(ts_us),
        card_uid=f"04{seq % 0xFFFFFF:06X}A1B2C3",
        kind=Kind.CHECK_IN,
        person_id=f"p-{seq % 5000}",
    )
