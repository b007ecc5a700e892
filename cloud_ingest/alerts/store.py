"""The alerts store: alerts, person_flags, last_seen, visits (cloud_ingest/migrations/alerts).

On one machine they live in their own SQLite file (settings `alerts.db_path`), not in the
console database: the
ingest path upserts `last_seen` after every stored batch, and keeping those writes out of the
console file means a lunchtime peak never holds the write lock a login or session touch waits
on. The console database still decides who sees what: each alert carries the area path of its
site, stamped when it is raised, and queries filter on it by whole path segments.

Times are UTC microseconds, like the wire. One alert per (kind, subject) is not closed at a
time (a partial unique index): raising it again updates `last_seen_at` and `count`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import (
    ColumnElement,
    TableClause,
    and_,
    false,
    func,
    or_,
    select,
    text,
    true,
)
from sqlalchemy.sql import column, table

from cloud_ingest.alerts.models import Alert, Finding, Kind, LastSeen, State, Visit
from cloud_ingest.db import Database
from cloud_ingest.errors import AlertError
from cloud_ingest.registry import areas
from cloud_ingest.registry.store import IN_CHUNK, statement
from warmcard import localtime

_ALERT_COLUMNS = (
    "id, kind, subject, site_id, device_id, person_id, area_path, opened_at, last_seen_at, "
    "count, state, acked_at, acked_by, cleared_at, cleared_by, closed_by, detail_zh, detail_en"
)
ALERTS: TableClause = table("alerts", *(column(c.strip()) for c in _ALERT_COLUMNS.split(", ")))
VISITS: TableClause = table(
    "visits",
    *map(column, ("id", "person_id", "area_path", "visited_at", "recorded_by", "note", "alert_id")),
)
_CLOSE_BY_USER = (
    "UPDATE alerts SET state = 'closed', cleared_at = :now, cleared_by = 'user', closed_by = :by"
)


def _alert(row: Sequence[Any]) -> Alert:
    return Alert(
        row[0], Kind(row[1]), row[2], row[3], row[4], row[5], row[6], row[7], row[8],
        row[9], State(row[10]), *row[11:],
    )  # fmt: skip


def within_any(col: ColumnElement[Any], area_paths: Iterable[str]) -> ColumnElement[bool]:
    """`col` lying in any of the areas (whole segments; '' is everything)."""
    clauses: list[ColumnElement[bool]] = []
    for area in area_paths:
        if area == areas.ROOT:
            return true()
        # '/' + 1 is '0': [area/, area0) is exactly the paths below `area`, on whole segments.
        clauses.append(or_(col == area, and_(col >= area + "/", col < area + "0")))
    return or_(*clauses) if clauses else false()


class AlertStore:
    """The alerts database; thread-safe (each call takes its own pooled connection), so the
    consumer, the evaluator and request threads share one."""

    def __init__(self, location: Path | str) -> None:
        try:
            self.db = Database(location, "alerts")
        except Exception as exc:
            raise AlertError(f"cannot open alerts database {location}: {exc}") from None

    @classmethod
    def open(cls, location: Path | str) -> AlertStore:
        return cls(location)

    def close(self) -> None:
        self.db.close()

    # ------------------------------------------------------------------ alerts

    def raise_alert(self, finding: Finding, area_path: str) -> int:
        """Open the alert, or update the one already not closed for (kind, subject)."""
        return self.raise_many([(finding, area_path)])[0]

    def raise_many(self, findings: Sequence[tuple[Finding, str]]) -> list[int]:
        """`raise_alert` for each (finding, area_path), in one transaction."""
        ids: list[int] = []
        if not findings:
            return ids
        with self.db.write() as conn:
            for f, area_path in findings:
                row = conn.execute(
                    text(
                        "SELECT id, last_seen_at FROM alerts WHERE kind = :kind"
                        " AND subject = :subject AND state != 'closed'"
                    ),
                    {"kind": f.kind.value, "subject": f.subject},
                ).first()
                if row is not None:
                    conn.execute(
                        text(
                            "UPDATE alerts SET last_seen_at = :at, count = count + 1,"
                            " detail_zh = :zh, detail_en = :en WHERE id = :id"
                        ),
                        {
                            "at": max(int(row[1]), f.at_us),
                            "zh": f.detail_zh,
                            "en": f.detail_en,
                            "id": row[0],
                        },
                    )
                    ids.append(int(row[0]))
                    continue
                new_id = conn.execute(
                    text(
                        "INSERT INTO alerts (kind, subject, site_id, device_id, person_id,"
                        " area_path, opened_at, last_seen_at, detail_zh, detail_en) VALUES"
                        " (:kind, :subject, :site, :device, :person, :area, :at, :at, :zh, :en)"
                        " RETURNING id"
                    ),
                    {
                        "kind": f.kind.value, "subject": f.subject, "site": f.site_id,
                        "device": f.device_id, "person": f.person_id, "area": area_path,
                        "at": f.at_us, "zh": f.detail_zh, "en": f.detail_en,
                    },
                ).scalar_one()  # fmt: skip
                ids.append(int(new_id))
        return ids

    def clear_auto(self, kind: Kind, subjects: Iterable[str], now_us: int) -> int:
        """Close these subjects' alerts of `kind` because the cause went away."""
        params = [{"now": now_us, "kind": kind.value, "subject": s} for s in subjects]
        if not params:
            return 0
        with self.db.write() as conn:
            cleared = 0
            for p in params:  # one at a time: executemany's rowcount is not portable
                cleared += conn.execute(
                    text(
                        "UPDATE alerts SET state = 'closed', cleared_at = :now,"
                        " cleared_by = 'auto' WHERE kind = :kind AND subject = :subject"
                        " AND state != 'closed'"
                    ),
                    p,
                ).rowcount
        return cleared

    def open_subjects(self, kind: Kind) -> set[str]:
        """Subjects of `kind` with an alert not closed."""
        with self.db.read() as conn:
            rows = conn.execute(
                text("SELECT subject FROM alerts WHERE kind = :kind AND state != 'closed'"),
                {"kind": kind.value},
            ).all()
        return {r[0] for r in rows}

    def get(self, alert_id: int) -> Alert | None:
        with self.db.read() as conn:
            row = conn.execute(
                text(f"SELECT {_ALERT_COLUMNS} FROM alerts WHERE id = :id"), {"id": alert_id}
            ).first()
        return _alert(row) if row else None

    def acknowledge(self, alert_id: int, username: str, now_us: int) -> bool:
        """Open → acknowledged; False if the alert was not open."""
        with self.db.write() as conn:
            n = conn.execute(
                text(
                    "UPDATE alerts SET state = 'acknowledged', acked_at = :now, acked_by = :by"
                    " WHERE id = :id AND state = 'open'"
                ),
                {"now": now_us, "by": username, "id": alert_id},
            ).rowcount
        return n == 1

    def close_alert(self, alert_id: int, username: str, now_us: int) -> bool:
        """Closed by a person (cleared_by=user); False if it was closed already."""
        with self.db.write() as conn:
            n = conn.execute(
                text(f"{_CLOSE_BY_USER} WHERE id = :id AND state != 'closed'"),
                {"now": now_us, "by": username, "id": alert_id},
            ).rowcount
        return n == 1

    def find(
        self,
        area_paths: Iterable[str],
        *,
        kinds: Iterable[Kind] = (),
        states: Iterable[State] = (),
        site_id: str | None = None,
        limit: int | None = 500,
    ) -> list[Alert]:
        """Alerts in these areas, newest activity first; `limit` None: all of them."""
        c = ALERTS.c
        query = select(ALERTS).where(within_any(c.area_path, area_paths))
        kind_values = [k.value for k in kinds]
        if kind_values:
            query = query.where(c.kind.in_(kind_values))
        state_values = [s.value for s in states]
        if state_values:
            query = query.where(c.state.in_(state_values))
        if site_id is not None:
            query = query.where(c.site_id == site_id)
        query = query.order_by(c.last_seen_at.desc(), c.id.desc())
        if limit is not None:
            query = query.limit(limit)
        with self.db.read() as conn:
            rows = conn.execute(query).all()
        return [_alert(r) for r in rows]

    def counts(self, area_paths: Iterable[str]) -> dict[str, int]:
        """Alerts not closed in these areas, per kind."""
        c = ALERTS.c
        query = (
            select(c.kind, func.count())
            .where(within_any(c.area_path, area_paths), c.state != "closed")
            .group_by(c.kind)
        )
        with self.db.read() as conn:
            rows = conn.execute(query).all()
        return {k: int(n) for k, n in rows}

    # ------------------------------------------------------------------ flags

    def set_flags(self, flags: Iterable[tuple[str, str, bool]], now_us: int) -> tuple[int, int]:
        """(person_id, flag, active) rows in one transaction; returns (added, removed)."""
        added = removed = 0
        with self.db.write() as conn:
            for person, flag, active in flags:
                row = {"person": person, "flag": flag, "now": now_us}
                if active:
                    added += conn.execute(
                        text(
                            "INSERT INTO person_flags (person_id, flag, flagged_at)"
                            " VALUES (:person, :flag, :now) ON CONFLICT DO NOTHING"
                        ),
                        row,
                    ).rowcount
                else:
                    removed += conn.execute(
                        text("DELETE FROM person_flags WHERE person_id = :person AND flag = :flag"),
                        row,
                    ).rowcount
        return added, removed

    def flags(self) -> list[tuple[str, str, int]]:
        """Every (person_id, flag, flagged_at)."""
        with self.db.read() as conn:
            rows = conn.execute(
                text(
                    "SELECT person_id, flag, flagged_at FROM person_flags ORDER BY person_id, flag"
                )
            ).all()
        return [(p, f, int(t)) for p, f, t in rows]

    # ------------------------------------------------------------------ last seen

    def upsert_last_seen(self, rows: Iterable[LastSeen]) -> None:
        """Keep the latest per person; older rows (a late backlog) never move it back."""
        params = [
            {"p": r.person_id, "ts": r.ts_us, "site": r.site_id, "dev": r.device_id, "k": r.kind}
            for r in rows
        ]
        if not params:
            return
        with self.db.write() as conn:
            conn.execute(
                text(
                    "INSERT INTO last_seen AS o (person_id, ts_us, site_id, device_id, kind)"
                    " VALUES (:p, :ts, :site, :dev, :k) ON CONFLICT (person_id) DO UPDATE SET"
                    " ts_us = excluded.ts_us, site_id = excluded.site_id,"
                    " device_id = excluded.device_id, kind = excluded.kind"
                    " WHERE excluded.ts_us > o.ts_us"
                ),
                params,
            )

    def last_seen(self, person_ids: Iterable[str] | None = None) -> dict[str, LastSeen]:
        columns = "SELECT person_id, ts_us, site_id, device_id, kind FROM last_seen"
        with self.db.read() as conn:
            if person_ids is None:
                rows = list(conn.execute(text(columns)).all())
            else:
                ids = list(person_ids)
                rows = []
                for i in range(0, len(ids), IN_CHUNK):
                    chunk = {"ids": ids[i : i + IN_CHUNK]}
                    rows += conn.execute(
                        statement(f"{columns} WHERE person_id IN :ids", chunk), chunk
                    )
        return {r[0]: LastSeen(r[0], int(r[1]), r[2], r[3], r[4]) for r in rows}

    def meta(self, key: str) -> int | None:
        with self.db.read() as conn:
            value = conn.execute(
                text("SELECT value FROM alerts_meta WHERE key = :key"), {"key": key}
            ).scalar()
        return int(value) if value is not None else None

    def set_meta(self, key: str, value: int) -> None:
        with self.db.write() as conn:
            conn.execute(
                text(
                    "INSERT INTO alerts_meta (key, value) VALUES (:key, :value)"
                    " ON CONFLICT (key) DO UPDATE SET value = excluded.value"
                ),
                {"key": key, "value": value},
            )

    # ------------------------------------------------------------------ visits

    def record_visit(
        self,
        person_id: str,
        area_path: str,
        visited_at: int,
        recorded_by: str,
        note: str,
        alert_id: int | None,
    ) -> int:
        """Keep the visit and close the person's visit-due alert (cleared_by=user), atomically."""
        with self.db.write() as conn:
            visit_id = conn.execute(
                text(
                    "INSERT INTO visits (person_id, area_path, visited_at, recorded_by, note,"
                    " alert_id) VALUES (:person, :area, :at, :by, :note, :alert) RETURNING id"
                ),
                {
                    "person": person_id,
                    "area": area_path,
                    "at": visited_at,
                    "by": recorded_by,
                    "note": note,
                    "alert": alert_id,
                },
            ).scalar_one()
            conn.execute(
                text(
                    f"{_CLOSE_BY_USER} WHERE kind = :kind AND subject = :person"
                    " AND state != 'closed'"
                ),
                {
                    "now": visited_at,
                    "by": recorded_by,
                    "kind": Kind.VISIT_DUE.value,
                    "person": person_id,
                },
            )
        return int(visit_id)

    def prune(self, alerts_before_us: int, visits_before_us: int) -> tuple[int, int]:
        """Delete closed alerts cleared before the first time and visits made before the
        second (retention); open and acknowledged alerts stay whatever their age."""
        old = "state = 'closed' AND coalesce(cleared_at, last_seen_at) < :before"
        with self.db.write() as conn:
            conn.execute(
                text(
                    "UPDATE visits SET alert_id = NULL WHERE alert_id IN "
                    f"(SELECT id FROM alerts WHERE {old})"
                ),
                {"before": alerts_before_us},
            )
            alerts = conn.execute(
                text(f"DELETE FROM alerts WHERE {old}"), {"before": alerts_before_us}
            ).rowcount
            visits = conn.execute(
                text("DELETE FROM visits WHERE visited_at < :before"), {"before": visits_before_us}
            ).rowcount
        return alerts, visits

    def last_visits(self) -> dict[str, int]:
        """person_id -> time of their latest visit."""
        with self.db.read() as conn:
            rows = conn.execute(
                text("SELECT person_id, max(visited_at) FROM visits GROUP BY person_id")
            ).all()
        return {p: int(t) for p, t in rows}

    def visits_in(self, area: str, month: str, tz: str | None = None) -> list[Visit]:
        """Visits to people in `area` (and below) during a local month 'YYYY-MM'."""
        try:
            year, mon = (int(x) for x in month.split("-"))
            start, end = localtime.month_bounds_us(year, mon, tz)
        except ValueError:
            raise AlertError(f"月份无效 month {month!r} must be YYYY-MM, e.g. 2024-05") from None
        return self.visits_between(area, start, end)

    def visits_between(self, area: str, start_us: int, end_us: int) -> list[Visit]:
        """Visits to people in `area` (and below) with start <= visited_at < end."""
        c = VISITS.c
        query = (
            select(VISITS)
            .where(within_any(c.area_path, [area]), c.visited_at >= start_us)
            .where(c.visited_at < end_us)
            .order_by(c.visited_at)
        )
        with self.db.read() as conn:
            rows = conn.execute(query).all()
        return [Visit(*r) for r in rows]
