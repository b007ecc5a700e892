"""The notification tables in the alerts store: targets per area, the delivery queue and the log.

- **Enqueue.** New alerts are those above the cursor (`alerts_meta.notify_cursor`); each gets one
  delivery per matching target, the cursor moving in the same `write()`. The unique index on
  (alert_id, target_id) and the serialised writer make that once, however many consoles look.
- **Claim.** A console takes due deliveries by stamping them with its name and a lease, in one
  `write()`: two consoles never hold the same row. It sends outside any transaction, then
  records the attempt; a console that dies mid-send loses its lease, and another retries.
- The queue is the table: a restart sends what was pending (`next_at` says when).
- Nothing about a person is kept here: an alert's message is made when it is sent, from the
  alert and the registry. An erased person's alerts are deleted, so their messages fail
  ("alert deleted") rather than name them.

The cursor relies on alert ids being committed in order: the alerts store's `write()` is its
only writer, on both engines. (SQLite may reuse the highest id after it is deleted; retention
deletes only alerts closed a year ago, and the log keeps `log_days`.)

Times are UTC microseconds.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import (
    ColumnElement,
    bindparam,
    column,
    literal_column,
    select,
    table,
    text,
)

from cloud_ingest.alerts.models import Alert, Kind, State
from cloud_ingest.alerts.store import within_any
from cloud_ingest.db import Database
from cloud_ingest.registry import areas

CURSOR_KEY = "notify_cursor"
_ALERT_COLUMNS = ", ".join(f.name for f in dataclasses.fields(Alert))


@dataclass(frozen=True)
class Target:
    id: int
    area_path: str
    channel: str  # webhook | email
    address: str  # the robot's URL, or e-mail addresses separated by commas
    secret: str | None
    kinds: frozenset[Kind]  # empty: every kind
    label: str
    created_by: str
    created_at: int

    def wants(self, alert: Alert) -> bool:
        """The alert lies in the target's area (or is at its site) and is of a kind it takes."""
        return areas.is_under(alert.area_path, self.area_path) and (
            not self.kinds or alert.kind in self.kinds
        )


@dataclass(frozen=True)
class Outgoing:
    """One message to put in the queue: about an alert (worded when sent), or a test's words."""

    alert_id: int | None
    target: Target
    subject: str = ""
    body: str = ""


@dataclass(frozen=True)
class Delivery:
    """A claimed delivery, with what sending it needs."""

    id: int
    alert_id: int | None
    target_id: int
    channel: str
    address: str
    secret: str | None
    subject: str
    body: str
    attempts: int  # made before this one
    target_gone: bool
    alert: Alert | None  # None for a test message, or when the alert was deleted

    @property
    def alert_gone(self) -> bool:
        return self.alert_id is not None and self.alert is None


@dataclass(frozen=True)
class LogRow:
    """One attempt, as the console's delivery log shows it."""

    id: int
    delivery_id: int
    alert_id: int | None
    target_id: int
    area_path: str
    channel: str
    address: str
    attempt: int
    status: str  # sent | error
    error: str
    holder: str
    started_at: int
    finished_at: int
    delivery_status: str  # pending | sent | failed
    next_at: int


_TARGET_COLUMNS = "id, area_path, channel, address, secret, kinds, label, created_by, created_at"


def _target(row: Any) -> Target:
    kinds = frozenset(Kind(k) for k in row.kinds.split(",") if k)
    return Target(
        int(row.id), row.area_path, row.channel, row.address, row.secret, kinds, row.label,
        row.created_by, int(row.created_at),
    )  # fmt: skip


def within(col: str, area_paths: Iterable[str]) -> ColumnElement[bool]:
    """`col` (a column by name) lies in one of the areas, by whole segments ('' is everywhere)."""
    return within_any(literal_column(col), area_paths)


class NotifyStore:
    """The notification tables; thread-safe (each call takes its own pooled connection)."""

    def __init__(self, location: Path | str) -> None:
        self.db = Database(location, "alerts")

    def close(self) -> None:
        self.db.close()

    # ------------------------------------------------------------------ targets

    def add_target(
        self,
        area_path: str,
        channel: str,
        address: str,
        *,
        secret: str | None,
        kinds: Iterable[Kind],
        label: str,
        created_by: str,
        now_us: int,
    ) -> int:
        with self.db.write() as conn:
            return int(
                conn.execute(
                    text(
                        "INSERT INTO notify_targets (area_path, channel, address, secret, kinds,"
                        " label, created_by, created_at) VALUES (:area, :channel, :address,"
                        " :secret, :kinds, :label, :by, :at) RETURNING id"
                    ),
                    {
                        "area": area_path, "channel": channel, "address": address,
                        "secret": secret or None, "kinds": ",".join(sorted(k.value for k in kinds)),
                        "label": label, "by": created_by, "at": now_us,
                    },
                ).scalar_one()
            )  # fmt: skip

    def remove_target(self, target_id: int, now_us: int) -> bool:
        """Delete the target; its deliveries still pending are marked failed (the log stays)."""
        with self.db.write() as conn:
            gone = conn.execute(
                text("DELETE FROM notify_targets WHERE id = :id"), {"id": target_id}
            ).rowcount
            conn.execute(
                text(
                    "UPDATE notify_deliveries SET status = 'failed', done_at = :now"
                    " WHERE target_id = :id AND status = 'pending'"
                ),
                {"id": target_id, "now": now_us},
            )
        return gone == 1

    def target(self, target_id: int) -> Target | None:
        with self.db.read() as conn:
            row = conn.execute(
                text(f"SELECT {_TARGET_COLUMNS} FROM notify_targets WHERE id = :id"),
                {"id": target_id},
            ).first()
        return _target(row) if row else None

    def targets(self, area_paths: Iterable[str] = (areas.ROOT,)) -> list[Target]:
        """Targets set on these areas or below them, by area."""
        query = (
            select(text(_TARGET_COLUMNS))
            .select_from(table("notify_targets"))
            .where(within("area_path", area_paths))
            .order_by(column("area_path"), column("id"))
        )
        with self.db.read() as conn:
            return [_target(r) for r in conn.execute(query)]

    # ------------------------------------------------------------------ enqueue

    def new_alerts(self, limit: int = 200) -> tuple[int, list[Alert]]:
        """The cursor and the alerts raised after it, oldest first."""
        with self.db.read() as conn:
            cursor = self._cursor(conn)
            rows = conn.execute(
                text(
                    f"SELECT {_ALERT_COLUMNS} FROM alerts WHERE id > :cursor"
                    " ORDER BY id LIMIT :limit"
                ),
                {"cursor": cursor, "limit": limit},
            ).all()
        return cursor, [_alert(r) for r in rows]

    @staticmethod
    def _cursor(conn: Any) -> int:
        value = conn.execute(
            text("SELECT value FROM alerts_meta WHERE key = :k"), {"k": CURSOR_KEY}
        ).scalar()
        return int(value or 0)

    def enqueue(self, outgoing: Sequence[Outgoing], up_to: int | None, now_us: int) -> int:
        """Queue these messages (each alert and target once) and move the cursor to `up_to`;
        returns how many were new."""
        added = 0
        with self.db.write() as conn:
            for out in outgoing:
                added += conn.execute(
                    text(
                        "INSERT INTO notify_deliveries (alert_id, target_id, area_path, channel,"
                        " address, subject, body, next_at, created_at) VALUES (:alert, :target,"
                        " :area, :channel, :address, :subject, :body, :now, :now)"
                        " ON CONFLICT (alert_id, target_id) DO NOTHING"
                    ),
                    {
                        "alert": out.alert_id, "target": out.target.id,
                        "area": out.target.area_path, "channel": out.target.channel,
                        "address": out.target.address, "subject": out.subject, "body": out.body,
                        "now": now_us,
                    },
                ).rowcount  # fmt: skip
            if up_to is not None and up_to > self._cursor(conn):
                conn.execute(
                    text(
                        "INSERT INTO alerts_meta (key, value) VALUES (:k, :v)"
                        " ON CONFLICT (key) DO UPDATE SET value = excluded.value"
                    ),
                    {"k": CURSOR_KEY, "v": up_to},
                )
        return added

    # ------------------------------------------------------------------ deliver

    def claim(self, holder: str, now_us: int, lease_us: int, limit: int = 20) -> list[Delivery]:
        """Take up to `limit` due deliveries for `holder` until `now + lease`."""
        due = text(
            "SELECT id FROM notify_deliveries WHERE status = 'pending'"
            " AND next_at <= :now AND (claim_until IS NULL OR claim_until < :now)"
            " ORDER BY next_at, id LIMIT :limit"
        )
        params = {"now": now_us, "limit": limit}
        with self.db.read() as conn:  # most rounds find nothing: no write lock for that
            if conn.execute(due, params).first() is None:
                return []
        with self.db.write() as conn:
            ids = list(conn.execute(due, params).scalars())
            if not ids:
                return []
            conn.execute(
                text(
                    "UPDATE notify_deliveries SET claimed_by = :holder, claim_until = :until"
                    " WHERE id IN :ids"
                ).bindparams(bindparam("ids", expanding=True)),
                {"holder": holder, "until": now_us + lease_us, "ids": ids},
            )
            rows = conn.execute(
                text(
                    "SELECT d.id, d.alert_id, d.target_id, d.channel, d.address, t.secret,"
                    " d.subject, d.body, d.attempts, t.id IS NULL AS gone"
                    " FROM notify_deliveries d LEFT JOIN notify_targets t ON t.id = d.target_id"
                    " WHERE d.id IN :ids ORDER BY d.next_at, d.id"
                ).bindparams(bindparam("ids", expanding=True)),
                {"ids": ids},
            ).all()
            alert_ids = sorted({r.alert_id for r in rows if r.alert_id is not None})
            alerts = {
                a.id: a
                for a in map(
                    _alert,
                    conn.execute(
                        text(f"SELECT {_ALERT_COLUMNS} FROM alerts WHERE id IN :ids").bindparams(
                            bindparam("ids", expanding=True)
                        ),
                        {"ids": alert_ids},
                    ),
                )
            }
        return [
            Delivery(
                int(r.id),
                r.alert_id,
                int(r.target_id),
                r.channel,
                r.address,
                r.secret,
                r.subject,
                r.body,
                int(r.attempts),
                bool(r.gone),
                alerts.get(r.alert_id),
            )
            for r in rows
        ]

    def record(
        self,
        delivery: Delivery,
        holder: str,
        *,
        error: str | None,
        started_us: int,
        finished_us: int,
        retry_us: Sequence[int],
    ) -> str:
        """Log one attempt and settle the delivery: sent, retried after the next wait, or
        failed when the waits are used up. Returns the delivery's status."""
        attempt = delivery.attempts + 1
        if error is None:
            status, next_at, done = "sent", finished_us, finished_us
        elif attempt > len(retry_us) or delivery.target_gone or delivery.alert_gone:
            status, next_at, done = "failed", finished_us, finished_us
        else:
            status, next_at, done = "pending", finished_us + retry_us[attempt - 1], None
        with self.db.write() as conn:
            conn.execute(
                text(
                    "INSERT INTO notify_attempts (delivery_id, alert_id, target_id, area_path,"
                    " channel, address, attempt, status, error, holder, started_at, finished_at)"
                    " SELECT id, alert_id, target_id, area_path, channel, address, :attempt,"
                    " :status, :error, :holder, :started, :finished"
                    " FROM notify_deliveries WHERE id = :id"
                ),
                {
                    "id": delivery.id, "attempt": attempt,
                    "status": "sent" if error is None else "error", "error": error or "",
                    "holder": holder, "started": started_us, "finished": finished_us,
                },
            )  # fmt: skip
            conn.execute(
                text(
                    "UPDATE notify_deliveries SET status = :status, attempts = :attempt,"
                    " next_at = :next_at, done_at = :done, claimed_by = NULL, claim_until = NULL"
                    " WHERE id = :id AND status = 'pending'"
                ),
                {
                    "status": status, "attempt": attempt, "next_at": next_at, "done": done,
                    "id": delivery.id,
                },
            )  # fmt: skip
        return status

    # ------------------------------------------------------------------ log

    def log(self, area_paths: Iterable[str], limit: int = 200) -> list[LogRow]:
        """The latest attempts on targets in these areas, newest first."""
        query = (
            select(
                text(
                    "a.id, a.delivery_id, a.alert_id, a.target_id, a.area_path, a.channel,"
                    " a.address, a.attempt, a.status, a.error, a.holder, a.started_at,"
                    " a.finished_at, d.status AS delivery_status, d.next_at"
                )
            )
            .select_from(text("notify_attempts a JOIN notify_deliveries d ON d.id = a.delivery_id"))
            .where(within("a.area_path", area_paths))
            .order_by(text("a.id DESC"))
            .limit(limit)
        )
        with self.db.read() as conn:
            return [LogRow(*r) for r in conn.execute(query)]

    def deliveries(self, alert_id: int | None = None) -> list[tuple[int, int, str, int]]:
        """(id, target_id, status, attempts) of an alert's deliveries (all of them: None)."""
        query = "SELECT id, target_id, status, attempts FROM notify_deliveries"
        params: dict[str, Any] = {}
        if alert_id is not None:
            query += " WHERE alert_id = :alert"
            params["alert"] = alert_id
        with self.db.read() as conn:
            rows = conn.execute(text(query + " ORDER BY id"), params).all()
        return [(int(a), int(b), str(c), int(d)) for a, b, c, d in rows]

    def prune(self, before_us: int) -> int:
        """Forget deliveries settled before `before_us`, with their attempts (retention)."""
        with self.db.write() as conn:
            conn.execute(
                text(
                    "DELETE FROM notify_attempts WHERE delivery_id IN (SELECT id FROM"
                    " notify_deliveries WHERE status != 'pending' AND done_at < :before)"
                ),
                {"before": before_us},
            )
            return int(
                conn.execute(
                    text(
                        "DELETE FROM notify_deliveries"
                        " WHERE status != 'pending' AND done_at < :before"
                    ),
                    {"before": before_us},
                ).rowcount
            )


def _alert(row: Any) -> Alert:
    values = list(row)
    values[1], values[10] = Kind(values[1]), State(values[10])
    return Alert(*values)
