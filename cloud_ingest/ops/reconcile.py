"""Reconciliation: per device and local day, the taps stored, the seqs missing, the conflicts.

A device's seq numbers run 1, 2, 3, ... across days, so a gap is judged on the device's whole
seq line: the day's points, the highest seq stored before the day and the lowest stored after
it, and the device's latest heartbeat `last_seq` for the tail (committed at the kiosk, not
stored yet). A gap is `in_flight` when the heartbeat's outbox_depth says the kiosk still holds
unacknowledged events in its range, else `missing` (lost, or still queued at the broker/ingest:
ask the kiosk to re-send it, cloud_ingest.ops.resend).

Conflicts come from two places: the ingest's seen index (a redelivered seq or event_id with other
content, dead-lettered) and InfluxDB itself (two points with one seq, or seqs out of time order),
which is the backstop for what a per-worker index cannot see.

Queries are InfluxQL over `taps`, one per device and day plus two per device, each bounded by the
device tag (one series set) and the day's time range:

    SELECT "seq", "event_id" FROM "taps" WHERE "device" = 'x' AND time >= .. AND time < ..

`check(storage, registry, device_ids, day_range)` is the whole API; `Report.gaps`,
`Report.conflicts` and `Report.stored` hold the answer.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from itertools import pairwise
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from cloud_ingest.pipeline.conflicts import Conflict as SeenConflict
from cloud_ingest.pipeline.influx import Storage, quote_ident, quote_string
from cloud_ingest.pipeline.lineprotocol import MEASUREMENT, SUSPECT_MEASUREMENT
from cloud_ingest.registry.store import Registry
from warmcard.contract import DeviceStatus
from warmcard.localtime import DEFAULT_TZ
from warmcard.timestamps import format_ts

MISSING = "missing"
IN_FLIGHT = "in_flight"
MAX_DAYS = 62  # one call covers at most this many days per device


class ConflictSource(Protocol):
    def conflicts(
        self, device_id: str | None, start_us: int | None, end_us: int | None, limit: int
    ) -> list[SeenConflict]: ...


@dataclass(frozen=True)
class Gap:
    """Seqs from_seq..to_seq (inclusive) of one device that are not stored."""

    device_id: str
    from_seq: int
    to_seq: int
    after_day: str | None  # local day of the stored seq just below (None: nothing below)
    before_day: str | None  # local day of the stored seq just above (None: none stored yet)
    state: str  # MISSING or IN_FLIGHT

    @property
    def count(self) -> int:
        return self.to_seq - self.from_seq + 1

    @property
    def day(self) -> str:
        """The local day the gap falls into, or the span of days it may lie in."""
        if self.after_day is not None and self.after_day == self.before_day:
            return self.after_day
        return f"{self.after_day or '…'}..{self.before_day or '…'}"

    @property
    def seqs(self) -> str:
        if self.from_seq == self.to_seq:
            return str(self.from_seq)
        return f"{self.from_seq}-{self.to_seq}"

    def as_json(self) -> dict[str, Any]:
        return {
            "device_id": self.device_id,
            "from_seq": self.from_seq,
            "to_seq": self.to_seq,
            "count": self.count,
            "day": self.day,
            "after_day": self.after_day,
            "before_day": self.before_day,
            "state": self.state,
        }


@dataclass(frozen=True)
class SeqConflict:
    """A seq (or event_id) seen with different content."""

    device_id: str
    seq: int
    day: str
    source: str  # "ingest": refused and dead-lettered; "storage": two points in InfluxDB
    detail: str
    event_ids: tuple[str, ...] = ()

    def as_json(self) -> dict[str, Any]:
        return {
            "device_id": self.device_id,
            "seq": self.seq,
            "day": self.day,
            "source": self.source,
            "detail": self.detail,
            "event_ids": list(self.event_ids),
        }


@dataclass(frozen=True)
class DeviceDay:
    device_id: str
    day: str
    stored: int
    first_seq: int | None
    last_seq: int | None

    def as_json(self) -> dict[str, Any]:
        return {
            "day": self.day,
            "stored": self.stored,
            "first_seq": self.first_seq,
            "last_seq": self.last_seq,
        }


@dataclass
class DeviceReport:
    device_id: str
    site_id: str | None
    tz: str
    days: list[DeviceDay] = field(default_factory=list)
    gaps: list[Gap] = field(default_factory=list)
    conflicts: list[SeqConflict] = field(default_factory=list)
    status: DeviceStatus | None = None

    def as_json(self) -> dict[str, Any]:
        status = self.status
        return {
            "device_id": self.device_id,
            "site_id": self.site_id,
            "tz": self.tz,
            "heartbeat": None
            if status is None
            else {
                "state": status.state,
                "ts": status.ts,
                "last_seq": status.last_seq,
                "outbox_depth": status.outbox_depth,
                "outbox_rejected": status.outbox_rejected,
            },
            "days": [d.as_json() for d in self.days],
            "gaps": [g.as_json() for g in self.gaps],
            "conflicts": [c.as_json() for c in self.conflicts],
        }


@dataclass
class Report:
    first_day: str
    last_day: str
    devices: list[DeviceReport] = field(default_factory=list)

    @property
    def gaps(self) -> list[Gap]:
        return [g for d in self.devices for g in d.gaps]

    @property
    def conflicts(self) -> list[SeqConflict]:
        return [c for d in self.devices for c in d.conflicts]

    @property
    def stored(self) -> dict[tuple[str, str], int]:
        """Points stored per (device_id, local day)."""
        return {(d.device_id, day.day): day.stored for d in self.devices for day in d.days}

    @property
    def missing_seqs(self) -> int:
        return sum(g.count for g in self.gaps)

    @property
    def clean(self) -> bool:
        return not self.gaps and not self.conflicts

    def as_json(self) -> dict[str, Any]:
        return {
            "from": self.first_day,
            "to": self.last_day,
            "clean": self.clean,
            "stored": sum(self.stored.values()),
            "missing_seqs": self.missing_seqs,
            "gaps": len(self.gaps),
            "conflicts": len(self.conflicts),
            "devices": [d.as_json() for d in self.devices],
        }


# ---------------------------------------------------------------------------- days


def parse_day(text: str) -> date:
    """YYYY-MM-DD; ValueError with a message for people."""
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ValueError(f"日期无效 Invalid day {text!r}: use YYYY-MM-DD") from None


def resolve_days(
    day: str | None, first: str | None, last: str | None, today: date
) -> tuple[date, date]:
    """--day, or --from/--to (either may be left out: today), or today alone."""
    if day is not None and (first is not None or last is not None):
        raise ValueError("用 --day 或 --from/--to Give day or from/to, not both")
    if day is not None:
        d = parse_day(day)
        return d, d
    d0 = parse_day(first) if first is not None else today
    d1 = parse_day(last) if last is not None else (today if first is not None else d0)
    return d0, d1


def day_bounds(day: date, tz: ZoneInfo) -> tuple[int, int]:
    """[start, end) of a local day in microseconds (DST-safe)."""
    start = datetime(day.year, day.month, day.day, tzinfo=tz)
    end = (start + timedelta(days=1, hours=2)).replace(hour=0)
    return int(start.timestamp()) * 1_000_000, int(end.timestamp()) * 1_000_000


def _local_day(ts_us: int, tz: ZoneInfo) -> str:
    return datetime.fromtimestamp(ts_us / 1e6, tz).date().isoformat()


def _days(day_range: tuple[date | str, date | str] | date | str) -> list[date]:
    if isinstance(day_range, tuple):
        first, last = day_range
    else:
        first = last = day_range
    d0 = parse_day(first) if isinstance(first, str) else first
    d1 = parse_day(last) if isinstance(last, str) else last
    if d1 < d0:
        raise ValueError(f"日期范围颠倒 Range ends ({d1}) before it starts ({d0})")
    n = (d1 - d0).days + 1
    if n > MAX_DAYS:
        raise ValueError(f"范围过长 Range of {n} days; at most {MAX_DAYS}")
    return [d0 + timedelta(days=i) for i in range(n)]


# ---------------------------------------------------------------------------- queries


@dataclass(frozen=True, slots=True)
class _Point:
    ts_us: int
    seq: int
    event_id: str


# A suspect tap (stored apart, counted nowhere) is still delivered: its seq is no gap.
_BOTH = f"{quote_ident(MEASUREMENT)}, {quote_ident(SUSPECT_MEASUREMENT)}"


def _device_filter(device_id: str) -> str:
    return f"{quote_ident('device')} = {quote_string(device_id)}"


def _points(storage: Storage, device_id: str, start_us: int, end_us: int) -> list[_Point]:
    series = storage.query(
        f'SELECT "seq", "event_id" FROM {_BOTH} '
        f"WHERE {_device_filter(device_id)} "
        f"AND time >= '{format_ts(start_us)}' AND time < '{format_ts(end_us)}'"
    )
    points = []
    for s in series:
        idx = {c: i for i, c in enumerate(s.columns)}
        for row in s.values:
            if row[idx["seq"]] is None:
                continue
            points.append(_Point(int(row[idx["time"]]), int(row[idx["seq"]]), row[idx["event_id"]]))
    points.sort(key=lambda p: (p.ts_us, p.seq))
    return points


def _neighbour(storage: Storage, device_id: str, fn: str, time_cond: str) -> _Point | None:
    series = storage.query(
        f'SELECT {fn}("seq") FROM {_BOTH} WHERE {_device_filter(device_id)} AND {time_cond}'
    )
    found = [
        _Point(int(row[0]), int(row[1]), "")
        for s in series
        for row in s.values
        if row[1] is not None
    ]
    if not found:
        return None
    # One series per measurement: the nearest of them is the neighbour.
    pick = max if fn in ("max", "last") else min
    return pick(found, key=lambda p: (p.ts_us, p.seq))


# ---------------------------------------------------------------------------- the check


def check(
    storage: Storage,
    registry: Registry,
    device_ids: Iterable[str],
    day_range: tuple[date | str, date | str] | date | str,
    *,
    statuses: Mapping[str, DeviceStatus | None] | None = None,
    seen: ConflictSource | None = None,
    default_tz: str = DEFAULT_TZ,
) -> Report:
    """Reconcile each device over the local days of `day_range` (inclusive), in its site's tz.

    `statuses`: each device's latest heartbeat (for last_seq and outbox_depth); `seen`: the
    ingest's conflict index (cloud_ingest.pipeline.conflicts.SeenIndex).
    """
    days = _days(day_range)
    report = Report(days[0].isoformat(), days[-1].isoformat())
    for device_id in device_ids:
        device = registry.device(device_id)
        site = registry.site(device.site_id) if device else None
        tz_name = site.tz if site else default_tz
        status = statuses.get(device_id) if statuses else None
        report.devices.append(
            _check_device(
                storage, device_id, device.site_id if device else None, tz_name, days, status, seen
            )
        )
    return report


def _check_device(
    storage: Storage,
    device_id: str,
    site_id: str | None,
    tz_name: str,
    days: Sequence[date],
    status: DeviceStatus | None,
    seen: ConflictSource | None,
) -> DeviceReport:
    tz = ZoneInfo(tz_name)
    out = DeviceReport(device_id, site_id, tz_name, status=status)
    window_start = day_bounds(days[0], tz)[0]
    window_end = day_bounds(days[-1], tz)[1]
    points: list[_Point] = []
    for day in days:  # one query per device and day keeps each answer small
        start, end = day_bounds(day, tz)
        day_points = _points(storage, device_id, start, end)
        seqs = [p.seq for p in day_points]
        out.days.append(
            DeviceDay(
                device_id,
                day.isoformat(),
                len(day_points),
                min(seqs) if seqs else None,
                max(seqs) if seqs else None,
            )
        )
        points.extend(day_points)
    below = _neighbour(storage, device_id, "max", f"time < '{format_ts(window_start)}'")
    above = _neighbour(storage, device_id, "min", f"time >= '{format_ts(window_end)}'")

    # Storage conflicts: one seq in two points, or seqs that do not grow with time.
    by_seq: dict[int, list[_Point]] = {}
    for p in points:
        by_seq.setdefault(p.seq, []).append(p)
    duplicated = {seq for seq, ps in by_seq.items() if len(ps) > 1}
    for seq in sorted(duplicated):
        ps = by_seq[seq]
        out.conflicts.append(
            SeqConflict(
                device_id,
                seq,
                _local_day(ps[0].ts_us, tz),
                "storage",
                f"seq {seq} 在 InfluxDB 中有 {len(ps)} 个点 stored as {len(ps)} points, at "
                + ", ".join(format_ts(p.ts_us) for p in ps),
                tuple(p.event_id for p in ps),
            )
        )
    highest = below.seq if below else 0
    for p in points:
        if p.seq <= highest and p.seq not in duplicated:
            out.conflicts.append(
                SeqConflict(
                    device_id,
                    p.seq,
                    _local_day(p.ts_us, tz),
                    "storage",
                    f"seq {p.seq} at {format_ts(p.ts_us)} 顺序错误 is not above seq {highest} "
                    "stored earlier in time",
                    (p.event_id,),
                )
            )
        highest = max(highest, p.seq)
    if above is not None and above.seq <= highest:
        out.conflicts.append(
            SeqConflict(
                device_id,
                above.seq,
                _local_day(above.ts_us, tz),
                "storage",
                f"seq {above.seq} at {format_ts(above.ts_us)} 顺序错误 is not above seq {highest} "
                "stored earlier in time",
            )
        )
    if seen is not None:
        for c in seen.conflicts(device_id, window_start, window_end, 1000):
            out.conflicts.append(
                SeqConflict(
                    device_id,
                    c.seq,
                    _local_day(c.ts_us, tz),
                    "ingest",
                    f"已拒收 refused, dead-lettered: {c.detail}",
                    (c.first_event_id, c.event_id),
                )
            )
    out.conflicts.sort(key=lambda c: (c.seq, c.source))

    # Gaps along the seq line: below, the window's seqs, above, then the heartbeat's last_seq.
    line: list[tuple[int, str | None]] = []
    line.append((below.seq, _local_day(below.ts_us, tz)) if below else (0, None))
    line.extend((seq, _local_day(by_seq[seq][0].ts_us, tz)) for seq in sorted(by_seq))
    if above is not None:
        line.append((above.seq, _local_day(above.ts_us, tz)))
    last_seq = status.last_seq if status is not None else None
    depth = status.outbox_depth if status is not None else None
    if above is None and last_seq is not None and last_seq > line[-1][0]:
        line.append((last_seq + 1, None))  # committed at the kiosk, nothing stored above
    pending_from = None
    if last_seq is not None and depth:
        pending_from = last_seq - depth + 1
    # seqs line[i] and line[i+1] are stored (or the heartbeat's bound); between them is missing.
    ordered = sorted(line, key=lambda x: x[0])
    for (a, a_day), (b, b_day) in pairwise(ordered):
        if b <= a + 1:
            continue
        lo, hi = a + 1, b - 1
        # The outbox sends in seq order, so its unacknowledged events are the top ones.
        if pending_from is not None and hi >= pending_from:
            if lo < pending_from:
                out.gaps.append(Gap(device_id, lo, pending_from - 1, a_day, b_day, MISSING))
                lo = pending_from
            out.gaps.append(Gap(device_id, lo, hi, a_day, b_day, IN_FLIGHT))
        else:
            out.gaps.append(Gap(device_id, lo, hi, a_day, b_day, MISSING))
    return out


# ---------------------------------------------------------------------------- text


def render_text(report: Report) -> str:
    """The report for people: zh-CN with English."""
    lines = [f"对账 Reconciliation {report.first_day} .. {report.last_day}"]
    for d in report.devices:
        status = d.status
        if status is None:
            beat = "无心跳 no heartbeat"
        else:
            beat = (
                f"心跳 heartbeat {status.state} last_seq={status.last_seq} "
                f"outbox_depth={status.outbox_depth}"
            )
        lines.append(f"设备 Device {d.device_id} (site {d.site_id or '?'}, {d.tz}); {beat}")
        for day in d.days:
            span = f" seq {day.first_seq}-{day.last_seq}" if day.stored else ""
            lines.append(f"  {day.day}: 已存 stored {day.stored}{span}")
        for g in d.gaps:
            label = (
                "仍在设备发件箱 still in the kiosk's outbox"
                if g.state == IN_FLIGHT
                else "缺失 missing (lost or queued; --request-resend)"
            )
            lines.append(f"  缺号 gap seq {g.seqs} ({g.count}) day {g.day}: {label}")
        for c in d.conflicts:
            lines.append(f"  冲突 CONFLICT seq {c.seq} day {c.day} [{c.source}]: {c.detail}")
    total = sum(report.stored.values())
    if report.clean:
        lines.append(f"无缺号、无冲突 Clean: {total} stored, no gaps, no conflicts")
    else:
        lines.append(
            f"发现问题 Problems: {total} stored, {len(report.gaps)} gap(s) "
            f"({report.missing_seqs} seqs), {len(report.conflicts)} conflict(s)"
        )
    return "\n".join(lines)
