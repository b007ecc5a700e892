"""Wire timestamps and event ids: UTC microseconds, their ISO 8601 form, UUIDv7 event ids.

Every event time on the wire is ``2026-11-29T06:15:22.123456Z`` (6 fraction digits, UTC);
inside Warmcard a time is an int of microseconds since the epoch (warmcard.localtime turns it
into a site's local day).
"""

from __future__ import annotations

import os
import time
import uuid
from datetime import date
from functools import lru_cache

from warmcard.ids import TS_RE

_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
_DAY_US = 86_400_000_000
# The wire format's range: 0001-01-01T00:00:00.000000Z ... 9999-12-31T23:59:59.999999Z.
MIN_TS_US = (1 - _EPOCH_ORDINAL) * _DAY_US
MAX_TS_US = (date.max.toordinal() + 1 - _EPOCH_ORDINAL) * _DAY_US - 1


def format_ts(ts_us: int) -> str:
    """Microseconds since the epoch as the wire's UTC time: 2026-11-29T06:15:22.123456Z."""
    if not MIN_TS_US <= ts_us <= MAX_TS_US:
        raise ValueError(f"{ts_us} µs is outside the years 1-9999")
    # Arithmetic, not strftime: glibc's %Y does not zero-pad years before 1000.
    days, us = divmod(ts_us, _DAY_US)
    d = date.fromordinal(days + _EPOCH_ORDINAL)
    seconds, us = divmod(us, 1_000_000)
    minutes, s = divmod(seconds, 60)
    h, m = divmod(minutes, 60)
    return f"{d.year:04d}-{d.month:02d}-{d.day:02d}T{h:02d}:{m:02d}:{s:02d}.{us:06d}Z"


def parse_ts(text: str) -> int:
    """The wire's UTC timestamp as microseconds since the epoch; ValueError if malformed."""
    match = TS_RE.fullmatch(text)
    if match is None:
        raise ValueError(
            "timestamp must be UTC ISO 8601 with 6 fraction digits, "
            "e.g. 2026-11-29T06:15:22.123456Z"
        )
    # Fixed positions once the pattern matched (ASCII digits only): slicing beats the groups.
    h, mi, s = int(text[11:13]), int(text[14:16]), int(text[17:19])
    if h > 23 or mi > 59 or s > 59:  # no leap seconds: kiosks smear them (NTP)
        raise ValueError(f"no such time of day: {text[11:19]}")
    return _day_us(text[:10]) + ((h * 60 + mi) * 60 + s) * 1_000_000 + int(text[20:26])


@lru_cache(maxsize=1024)
def _day_us(day: str) -> int:
    """`2026-11-29` as µs since the epoch; ingest sees the same few days all day long."""
    y, mo, d = int(day[:4]), int(day[5:7]), int(day[8:10])
    return (date(y, mo, d).toordinal() - _EPOCH_ORDINAL) * _DAY_US  # ValueError: 2026-02-30


def new_event_id(ts_us: int) -> str:
    """A UUIDv7 (RFC 9562): the event time in its first 48 bits, so ids sort by time."""
    ms = ts_us // 1000
    rand = int.from_bytes(os.urandom(10), "big")
    value = (ms & 0xFFFF_FFFF_FFFF) << 80
    value |= 0x7 << 76
    value |= ((rand >> 68) & 0xFFF) << 64
    value |= 0b10 << 62
    value |= rand & 0x3FFF_FFFF_FFFF_FFFF
    return str(uuid.UUID(int=value))


def now_us() -> int:
    return time.time_ns() // 1000
