"""The closure calendar (闭院日历): days an area is closed (Spring Festival, a courtyard shut for
repairs), which do not count towards a flagged person's 'days unseen'.

A closure names an area path and local dates, both ends included (no end: until further
notice); it covers every site beneath the area. The days are local to the person's home site:
[start 00:00, day after end 00:00) in its zone. Kept in the alerts database (revision
alerts_0003) beside the flags and visits it qualifies.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import text

from cloud_ingest.alerts.store import AlertStore
from cloud_ingest.errors import AlertError
from cloud_ingest.registry import areas
from warmcard import localtime

MAX_REASON = 100
MAX_DAYS = 366  # a longer closure is a typo in the year
Span = tuple[int, int]  # [start, end) in wire microseconds
_COLUMNS = "id, area_path, start_day, end_day, reason, created_by, created_us"


@dataclass(frozen=True)
class Closure:
    id: int
    area_path: str
    start_day: date
    end_day: date | None  # None: until further notice
    reason: str
    created_by: str
    created_us: int

    def covers(self, area_path: str) -> bool:
        """True for the area itself and every area or site beneath it."""
        return areas.is_under(area_path, self.area_path)

    def span_us(self, tz: str | None, now_us: int) -> Span:
        """The closed time in a zone; an open-ended closure runs to `now_us`."""
        start = localtime.day_bounds_us(self.start_day, tz)[0]
        end = localtime.day_bounds_us(self.end_day, tz)[1] if self.end_day else now_us
        return start, max(start, end)


def _closure(row: Sequence[Any]) -> Closure:
    end = date.fromisoformat(row[3]) if row[3] else None
    return Closure(
        int(row[0]), row[1], date.fromisoformat(row[2]), end, row[4], row[5], int(row[6])
    )


def parse_day(value: str, what: str) -> date:
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        raise AlertError(f"{what}日期无效 {what} date {value!r}: use YYYY-MM-DD") from None


def check(start: date, end: date | None, reason: str) -> str:
    """The reason as stored, or AlertError saying what is wrong with the closure."""
    if end is not None and end < start:
        raise AlertError("结束日期早于开始日期 the end date is before the start date")
    if end is not None and (end - start).days >= MAX_DAYS:
        raise AlertError(f"闭院超过 {MAX_DAYS} 天 a closure is at most {MAX_DAYS} days")
    if any(unicodedata.category(ch) in ("Cc", "Cf") for ch in reason):
        raise AlertError("原因含控制字符 the reason contains control characters")
    reason = reason.strip()
    if len(reason) > MAX_REASON:
        raise AlertError(f"原因过长 the reason is longer than {MAX_REASON} characters")
    return reason


class Closures:
    """The closures table of an alerts store."""

    def __init__(self, store: AlertStore) -> None:
        self.db = store.db

    def add(
        self, area_path: str, start: date, end: date | None, reason: str, by: str, now_us: int
    ) -> Closure:
        reason = check(start, end, reason)
        params = {
            "area": area_path,
            "start": start.isoformat(),
            "end": end.isoformat() if end else None,
            "reason": reason,
            "by": by,
            "now": now_us,
        }
        with self.db.write() as conn:
            new_id = conn.execute(
                text(
                    "INSERT INTO closures (area_path, start_day, end_day, reason, created_by,"
                    " created_us) VALUES (:area, :start, :end, :reason, :by, :now) RETURNING id"
                ),
                params,
            ).scalar_one()
        return Closure(int(new_id), area_path, start, end, reason, by, now_us)

    def get(self, closure_id: int) -> Closure | None:
        with self.db.read() as conn:
            row = conn.execute(
                text(f"SELECT {_COLUMNS} FROM closures WHERE id = :id"), {"id": closure_id}
            ).first()
        return _closure(row) if row else None

    def delete(self, closure_id: int) -> bool:
        with self.db.write() as conn:
            n = conn.execute(text("DELETE FROM closures WHERE id = :id"), {"id": closure_id})
        return n.rowcount == 1

    def all(self) -> list[Closure]:
        """Every closure, latest start first."""
        with self.db.read() as conn:
            rows = conn.execute(
                text(f"SELECT {_COLUMNS} FROM closures ORDER BY start_day DESC, id DESC")
            ).all()
        return [_closure(r) for r in rows]

    def seen_from(self, area_paths: Iterable[str]) -> list[Closure]:
        """Closures that matter to these areas: inside them, or above them (covering them)."""
        mine = list(area_paths)
        return [
            c
            for c in self.all()
            if any(c.covers(a) or areas.is_under(c.area_path, a) for a in mine)
        ]


def closed_spans(
    closures: Iterable[Closure], area_path: str, tz: str | None, now_us: int
) -> list[Span]:
    """The closed time of the place `area_path` (a site's path), merged and in order."""
    spans = sorted(c.span_us(tz, now_us) for c in closures if c.covers(area_path))
    merged: list[Span] = []
    for start, end in spans:
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def overlap_us(spans: Iterable[Span], start_us: int, end_us: int) -> int:
    """How much of [start, end) the (merged) spans cover."""
    return sum(max(0, min(end, end_us) - max(start, start_us)) for start, end in spans)
