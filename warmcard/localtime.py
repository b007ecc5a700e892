"""Time zones and local days: wire times are UTC microseconds, people live in a site's zone.

Every site has a tz database zone (registry and DeviceConfig); Asia/Shanghai when none is given.
"Today", a meal day and a monthly report are all local calendar days in that zone.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from warmcard.errors import WarmcardError

DEFAULT_TZ = "Asia/Shanghai"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class UnknownTimezone(WarmcardError, ValueError):
    """A time zone name is not in the tz database."""


@lru_cache(maxsize=64)
def zone(name: str | None = None) -> ZoneInfo:
    """A tz database zone; None or '' means Asia/Shanghai. Raise UnknownTimezone for a bad name."""
    try:
        return ZoneInfo(name or DEFAULT_TZ)
    except (ZoneInfoNotFoundError, ValueError):
        raise UnknownTimezone(
            f"未知时区 unknown time zone {name!r}; use a tz database name like {DEFAULT_TZ}"
        ) from None


def to_local(ts: int | datetime, tz: str | None = None) -> datetime:
    """An aware local datetime from wire microseconds or an aware datetime; naive is refused."""
    if isinstance(ts, datetime):
        if ts.tzinfo is None or ts.utcoffset() is None:
            raise ValueError(f"naive datetime {ts!r}: say which zone it is in")
        return ts.astimezone(zone(tz))
    return datetime.fromtimestamp(ts / 1_000_000, UTC).astimezone(zone(tz))


def to_us(moment: datetime) -> int:
    """Wire microseconds of an aware datetime, exactly (no float rounding)."""
    delta = moment - _EPOCH
    return (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds


def day_bounds_us(day: date, tz: str | None = None) -> tuple[int, int]:
    """[start, end) of a local calendar day in wire microseconds, for InfluxQL time ranges."""
    z = zone(tz)
    start = datetime(day.year, day.month, day.day, tzinfo=z)
    end = datetime.combine(day + timedelta(days=1), datetime.min.time(), tzinfo=z)
    return to_us(start), to_us(end)


def month_bounds_us(year: int, month: int, tz: str | None = None) -> tuple[int, int]:
    """[start, end) of a local calendar month in wire microseconds, for monthly reports."""
    z = zone(tz)
    start = datetime(year, month, 1, tzinfo=z)
    end = datetime(year + month // 12, month % 12 + 1, 1, tzinfo=z)
    return to_us(start), to_us(end)


def day_window(tz: ZoneInfo, ts_us: int) -> tuple[str, int, int]:
    """The local date containing ts_us (ISO) and that day's [start, end) in microseconds."""
    day = datetime.fromtimestamp(ts_us / 1e6, tz).date()
    start, end = day_bounds_us(day, tz.key)
    return day.isoformat(), start, end
