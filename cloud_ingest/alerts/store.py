"""SQLite tables of the alerts package: alerts, person_flags, last_seen, visits.

They live in their own file (settings `alerts.db_path`), not in the console database: the
ingest path upserts `last_seen` after every stored batch, and keeping those writes out of the
console file means a lunchtime peak never holds the write lock a login or session touch waits
on. The console database still decides who sees what: each alert carries the area path of its
site, stamped when it is raised, and queries filter on it by whole path segments.

Times are UTC microseconds, like the wire. One alert per (kind, subject) is not closed at a
time (a partial unique index): raising it again updates `last_seen_at` and `count`.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from cloud_ingest import db
from cloud_ingest.alerts.models import Alert, Finding, Kind, LastSeen, State, Visit
from cloud_ingest.errors import AlertError
from cloud_ingest.registry import areas
from warmcard import localtime

SCHEMA = """
CREATE TABLE IF NOT EXISTS alerts (
    id           INTEGER PRIMARY KEY,
    kind         TEXT NOT NULL,
    subject      TEXT NOT NULL,              -- device_id, person_id or site_id, by kind
    site_id      TEXT,
    device_id    TEXT,
    person_id    TEXT,
    area_path    TEXT NOT NULL DEFAULT '',   -- the site's area when raised; '' = unplaced
    opened_at    INTEGER NOT NULL,
    last_seen_at INTEGER NOT NULL,
    count        INTEGER NOT NULL DEFAULT 1,
    state        TEXT NOT NULL DEFAULT 'open'
                 CHECK (state IN ('open', 'acknowledged', 'closed')),
    acked_at     INTEGER,
    acked_by     TEXT,
    cleared_at   INTEGER,
    cleared_by   TEXT CHECK (cleared_by IN ('auto', 'user')),
    closed_by    TEXT,                       -- the username when cleared_by = 'user'
    detail_zh    TEXT NOT NULL DEFAULT '',
    detail_en    TEXT NOT NULL DEFAULT ''
);
CREATE UNIQUE INDEX IF NOT EXISTS alerts_one_open ON alerts (kind, subject)
    WHERE state != 'closed';
CREATE INDEX IF NOT EXISTS alerts_area ON alerts (area_path, state);
CREATE TABLE IF NOT EXISTS person_flags (
    person_id  TEXT NOT NULL,
    flag       TEXT NOT NULL,
    flagged_at INTEGER NOT NULL,             -- a new flag gets the full grace before a visit
    PRIMARY KEY (person_id, flag)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS last_seen (
    person_id TEXT PRIMARY KEY,
    ts_us     INTEGER NOT NULL,              -- device event time of the latest check-in or meal
    site_id   TEXT NOT NULL,
    device_id TEXT NOT NULL,
    kind      TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS visits (
    id          INTEGER PRIMARY KEY,
    person_id   TEXT NOT NULL,
    area_path   TEXT NOT NULL,               -- the person's area when visited
    visited_at  INTEGER NOT NULL,
    recorded_by TEXT NOT NULL,
    note        TEXT NOT NULL DEFAULT '',
    alert_id    INTEGER REFERENCES alerts (id)
);
CREATE INDEX IF NOT EXISTS visits_person ON visits (person_id, visited_at);
CREATE INDEX IF NOT EXISTS visits_area ON visits (area_path, visited_at);
CREATE TABLE IF NOT EXISTS alerts_meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""


_ALERT_COLUMNS = (
    "id, kind, subject, site_id, device_id, person_id, area_path, opened_at, last_seen_at, "
    "count, state, acked_at, acked_by, cleared_at, cleared_by, closed_by, detail_zh, detail_en"
)


def _alert(row: Sequence[Any]) -> Alert:
    return Alert(
        row[0], Kind(row[1]), row[2], row[3], row[4], row[5], row[6], row[7], row[8],
        row[9], State(row[10]), *row[11:],
    )  # fmt: skip


def within_any(column: str, area_paths: Iterable[str]) -> tuple[str, tuple[str, ...]]:
    """SQL for `column` lying in any of the areas (whole segments; '' is everything)."""
    clauses: list[str] = []
    params: list[str] = []
    for area in area_paths:
        if area == areas.ROOT:
            return "1", ()
        # '/' + 1 is '0': [area/, area0) is exactly the paths below `area`, on whole segments.
        clauses.append(f"({column} = ? OR ({column} >= ? AND {column} < ?))")
        params += [area, area + "/", area + "0"]
    if not clauses:
        return "0", ()
    return "(" + " OR ".join(clauses) + ")", tuple(params)


def connect(path: Path | str) -> sqlite3.Connection:
    """Open (creating if needed) the alerts database."""
    try:
        conn = db.connect(path, shared=True)
        conn.executescript(SCHEMA)
    except sqlite3.Error as exc:
        raise AlertError(f"cannot open alerts database {path}: {exc}") from None
    return conn


class AlertStore:
    """One connection, guarded by a lock so the consumer and the evaluator threads may share it."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self.lock = threading.RLock()

    @classmethod
    def open(cls, path: Path | str) -> AlertStore:
        return cls(connect(path))

    def close(self) -> None:
        with self.lock:
            self.conn.close()

    # ------------------------------------------------------------------ alerts

    def raise_alert(self, finding: Finding, area_path: str) -> int:
        """Open the alert, or update the one already not closed for (kind, subject)."""
        return self.raise_many([(finding, area_path)])[0]

    def raise_many(self, findings: Sequence[tuple[Finding, str]]) -> list[int]:
        """`raise_alert` for each (finding, area_path), in one transaction."""
        ids: list[int] = []
        with self.lock, self.conn:
            for f, area_path in findings:
                row = self.conn.execute(
                    "SELECT id FROM alerts WHERE kind = ? AND subject = ? AND state != 'closed'",
                    (f.kind.value, f.subject),
                ).fetchone()
                if row is not None:
                    self.conn.execute(
                        "UPDATE alerts SET last_seen_at = max(last_seen_at, ?),"
                        " count = count + 1, detail_zh = ?, detail_en = ? WHERE id = ?",
                        (f.at_us, f.detail_zh, f.detail_en, row[0]),
                    )
                    ids.append(int(row[0]))
                    continue
                cur = self.conn.execute(
                    "INSERT INTO alerts (kind, subject, site_id, device_id, person_id, area_path,"
                    " opened_at, last_seen_at, detail_zh, detail_en)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        f.kind.value, f.subject, f.site_id, f.device_id, f.person_id, area_path,
                        f.at_us, f.at_us, f.detail_zh, f.detail_en,
                    ),
                )  # fmt: skip
                assert cur.lastrowid is not None
                ids.append(cur.lastrowid)
        return ids

    def clear_auto(self, kind: Kind, subjects: Iterable[str], now_us: int) -> int:
        """Close these subjects' alerts of `kind` because the cause went away."""
        params = [(now_us, kind.value, s) for s in subjects]
        if not params:
            return 0
        with self.lock, self.conn:
            cur = self.conn.executemany(
                "UPDATE alerts SET state = 'closed', cleared_at = ?, cleared_by = 'auto'"
                " WHERE kind = ? AND subject = ? AND state != 'closed'",
                params,
            )
        return cur.rowcount

    def open_subjects(self, kind: Kind) -> set[str]:
        """Subjects of `kind` with an alert not closed."""
        with self.lock:
            rows = self.conn.execute(
                "SELECT subject FROM alerts WHERE kind = ? AND state != 'closed'", (kind.value,)
            ).fetchall()
        return {r[0] for r in rows}

    def get(self, alert_id: int) -> Alert | None:
        with self.lock:
            row = self.conn.execute(
                f"SELECT {_ALERT_COLUMNS} FROM alerts WHERE id = ?", (alert_id,)
            ).fetchone()
        return _alert(row) if row else None

    def acknowledge(self, alert_id: int, username: str, now_us: int) -> bool:
        """Open → acknowledged; False if the alert was not open."""
        with self.lock, self.conn:
            cur = self.conn.execute(
                "UPDATE alerts SET state = 'acknowledged', acked_at = ?, acked_by = ?"
                " WHERE id = ? AND state = 'open'",
                (now_us, username, alert_id),
            )
        return cur.rowcount == 1

    def close_alert(self, alert_id: int, username: str, now_us: int) -> bool:
        """Closed by a person (cleared_by=user); False if it was closed already."""
        with self.lock, self.conn:
            cur = self.conn.execute(
                "UPDATE alerts SET state = 'closed', cleared_at = ?, cleared_by = 'user',"
                " closed_by = ? WHERE id = ? AND state != 'closed'",
                (now_us, username, alert_id),
            )
        return cur.rowcount == 1

    def find(
        self,
        area_paths: Iterable[str],
        *,
        kinds: Iterable[Kind] = (),
        states: Iterable[State] = (),
        site_id: str | None = None,
        limit: int = 500,
    ) -> list[Alert]:
        """Alerts in these areas, newest activity first."""
        where, params = within_any("area_path", area_paths)
        sql = f"SELECT {_ALERT_COLUMNS} FROM alerts WHERE {where}"
        args: list[Any] = list(params)
        kind_values = [k.value for k in kinds]
        if kind_values:
            sql += f" AND kind IN ({','.join('?' * len(kind_values))})"
            args += kind_values
        state_values = [s.value for s in states]
        if state_values:
            sql += f" AND state IN ({','.join('?' * len(state_values))})"
            args += state_values
        if site_id is not None:
            sql += " AND site_id = ?"
            args.append(site_id)
        sql += " ORDER BY last_seen_at DESC, id DESC LIMIT ?"
        args.append(limit)
        with self.lock:
            rows = self.conn.execute(sql, args).fetchall()
        return [_alert(r) for r in rows]

    def counts(self, area_paths: Iterable[str]) -> dict[str, int]:
        """Alerts not closed in these areas, per kind."""
        where, params = within_any("area_path", area_paths)
        with self.lock:
            rows = self.conn.execute(
                f"SELECT kind, count(*) FROM alerts WHERE {where} AND state != 'closed'"
                " GROUP BY kind",
                params,
            ).fetchall()
        return {k: int(n) for k, n in rows}

    # ------------------------------------------------------------------ flags

    def set_flags(self, flags: Iterable[tuple[str, str, bool]], now_us: int) -> tuple[int, int]:
        """(person_id, flag, active) rows in one transaction; returns (added, removed)."""
        added = removed = 0
        with self.lock, self.conn:
            for person, flag, active in flags:
                if active:
                    cur = self.conn.execute(
                        "INSERT OR IGNORE INTO person_flags (person_id, flag, flagged_at)"
                        " VALUES (?, ?, ?)",
                        (person, flag, now_us),
                    )
                    added += cur.rowcount
                else:
                    cur = self.conn.execute(
                        "DELETE FROM person_flags WHERE person_id = ? AND flag = ?", (person, flag)
                    )
                    removed += cur.rowcount
        return added, removed

    def flags(self) -> list[tuple[str, str, int]]:
        """Every (person_id, flag, flagged_at)."""
        with self.lock:
            rows = self.conn.execute(
                "SELECT person_id, flag, flagged_at FROM person_flags ORDER BY person_id, flag"
            ).fetchall()
        return [(p, f, int(t)) for p, f, t in rows]

    # ------------------------------------------------------------------ last seen

    def upsert_last_seen(self, rows: Iterable[LastSeen]) -> None:
        """Keep the latest per person; older rows (a late backlog) never move it back."""
        with self.lock, self.conn:
            self.conn.executemany(
                "INSERT INTO last_seen (person_id, ts_us, site_id, device_id, kind)"
                " VALUES (?, ?, ?, ?, ?) ON CONFLICT (person_id) DO UPDATE SET"
                " ts_us = excluded.ts_us, site_id = excluded.site_id,"
                " device_id = excluded.device_id, kind = excluded.kind"
                " WHERE excluded.ts_us > last_seen.ts_us",
                [(r.person_id, r.ts_us, r.site_id, r.device_id, r.kind) for r in rows],
            )

    def last_seen(self, person_ids: Iterable[str] | None = None) -> dict[str, LastSeen]:
        with self.lock:
            if person_ids is None:
                rows = self.conn.execute("SELECT * FROM last_seen").fetchall()
            else:
                ids = list(person_ids)
                rows = []
                for i in range(0, len(ids), 500):
                    chunk = ids[i : i + 500]
                    rows += self.conn.execute(
                        "SELECT * FROM last_seen WHERE person_id IN"
                        f" ({','.join('?' * len(chunk))})",
                        chunk,
                    ).fetchall()
        return {r[0]: LastSeen(r[0], int(r[1]), r[2], r[3], r[4]) for r in rows}

    def meta(self, key: str) -> int | None:
        with self.lock:
            row = self.conn.execute(
                "SELECT value FROM alerts_meta WHERE key = ?", (key,)
            ).fetchone()
        return int(row[0]) if row else None

    def set_meta(self, key: str, value: int) -> None:
        with self.lock, self.conn:
            self.conn.execute(
                "INSERT INTO alerts_meta (key, value) VALUES (?, ?)"
                " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (key, value),
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
        with self.lock, self.conn:
            cur = self.conn.execute(
                "INSERT INTO visits (person_id, area_path, visited_at, recorded_by, note,"
                " alert_id) VALUES (?, ?, ?, ?, ?, ?)",
                (person_id, area_path, visited_at, recorded_by, note, alert_id),
            )
            self.conn.execute(
                "UPDATE alerts SET state = 'closed', cleared_at = ?, cleared_by = 'user',"
                " closed_by = ? WHERE kind = ? AND subject = ? AND state != 'closed'",
                (visited_at, recorded_by, Kind.VISIT_DUE.value, person_id),
            )
            assert cur.lastrowid is not None
            return cur.lastrowid

    def prune(self, alerts_before_us: int, visits_before_us: int) -> tuple[int, int]:
        """Delete closed alerts cleared before the first time and visits made before the
        second (retention); open and acknowledged alerts stay whatever their age."""
        with self.lock, self.conn:
            old = "state = 'closed' AND COALESCE(cleared_at, last_seen_at) < ?"
            self.conn.execute(
                f"UPDATE visits SET alert_id = NULL WHERE alert_id IN "
                f"(SELECT id FROM alerts WHERE {old})",
                (alerts_before_us,),
            )
            alerts = self.conn.execute(f"DELETE FROM alerts WHERE {old}", (alerts_before_us,))
            visits = self.conn.execute(
                "DELETE FROM visits WHERE visited_at < ?", (visits_before_us,)
            )
            return alerts.rowcount, visits.rowcount

    def last_visits(self) -> dict[str, int]:
        """person_id -> time of their latest visit."""
        with self.lock:
            rows = self.conn.execute(
                "SELECT person_id, max(visited_at) FROM visits GROUP BY person_id"
            ).fetchall()
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
        where, params = within_any("area_path", [area])
        with self.lock:
            rows = self.conn.execute(
                "SELECT id, person_id, area_path, visited_at, recorded_by, note, alert_id"
                f" FROM visits WHERE {where} AND visited_at >= ? AND visited_at < ?"
                " ORDER BY visited_at",
                (*params, start_us, end_us),
            ).fetchall()
        return [Visit(*r) for r in rows]
