"""Erase a person: the registry forgets them, every other store loses what names them.

What happens, store by store (docs/security.md, "Personal data"):

- InfluxDB (`taps`, `suspect_taps`): each of the person's points is written again with the same
  measurement, tags and time, with `person_id` and `card_uid` replaced by one random token
  (`erased-<16 hex>`). A point's identity is (measurement, tags, time) and both ids are fields,
  so the rewrite overwrites the point in place (InfluxDB 1.x keeps the other fields): counts per
  site, day, kind and meal, and "distinct elders served", stay exactly as they were; nothing
  links the token to the person (it is random, not derived from the id). InfluxDB 1.6 can only
  DELETE by tag, which would also lose the counts.
- alerts: the person's alerts, flags and last-seen row are deleted; their visits are kept for the
  monthly "visits made" with the token for the person and the note emptied.
- dead letters: every letter whose payload or detail holds the person id, a card or the name is
  deleted.
- registry: enrol captures of their cards, their card history, cards and the person are deleted
  in one change, which bumps the version: the consoles republish the site's roster without them
  and each kiosk replaces its cached roster file.
- hand-recorded meals (补录, the console database): kept for the counts with the token for the
  person and the reason emptied (the reason is text a person typed).
- kiosks: one erase command per registered kiosk (a person may have tapped at several sites) is
  recorded in the console database (cloud_ingest.console.kiosk_erasure); the consoles send it
  until each kiosk confirms, and the kiosk rewrites the person's taps in its outbox (acknowledged
  and pending) with the same token, so a later resend stores nothing identifying.

InfluxDB goes first: if it fails, nothing else has changed and the erasure can simply be run
again. Running it again after success finds nothing and changes nothing.
"""

from __future__ import annotations

import secrets
import sqlite3
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path

from cloud_ingest import db
from cloud_ingest.alerts.store import connect as connect_alerts
from cloud_ingest.console import hand_meals
from cloud_ingest.console.kiosk_erasure import KioskErasures
from cloud_ingest.errors import RegistryEditError
from cloud_ingest.pipeline.influx import Storage, quote_ident, quote_string
from cloud_ingest.pipeline.lineprotocol import MEASUREMENT, SUSPECT_MEASUREMENT, encode_point
from cloud_ingest.registry.store import Registry

TOKEN_PREFIX = "erased-"
_WRITE_BATCH = 5000


@dataclass
class Erasure:
    """What an erasure changed, counted per store (no names: this goes to the audit log)."""

    person_id: str
    site_id: str
    token: str
    cards: int = 0
    points: dict[str, int] = field(default_factory=dict)
    alerts: int = 0
    flags: int = 0
    visits_kept: int = 0
    dead_letters: int = 0
    captures: int = 0
    card_history: int = 0
    hand_meals: int = 0
    kiosks: int = 0

    def counts(self) -> dict[str, object]:
        return {
            "site": self.site_id,
            "cards": self.cards,
            **{f"points_{m}": n for m, n in self.points.items()},
            "alerts": self.alerts,
            "flags": self.flags,
            "visits_kept": self.visits_kept,
            "dead_letters": self.dead_letters,
            "captures": self.captures,
            "card_history": self.card_history,
            "hand_meals": self.hand_meals,
            "kiosks": self.kiosks,
        }


def erase_person(
    person_id: str,
    *,
    registry: Registry,
    storage: Storage,
    alerts_db: Path,
    deadletter_db: Path,
    console_db: Path,
) -> Erasure:
    """Erase `person_id` everywhere the cloud keeps it; RegistryEditError if unknown."""
    found = registry.query(
        "SELECT display_name, site_id FROM people WHERE person_id = ?", (person_id,)
    )
    if not found:
        raise RegistryEditError(f"人员不存在 no person {person_id!r}")
    name, site_id = found[0]
    cards = sorted(
        {
            r[0]
            for r in registry.query(
                "SELECT card_uid FROM cards WHERE person_id = ? UNION "
                "SELECT card_uid FROM card_assignments WHERE person_id = ?",
                (person_id, person_id),
            )
        }
    )
    erasure = Erasure(person_id, site_id, TOKEN_PREFIX + secrets.token_hex(8), cards=len(cards))
    for measurement in (MEASUREMENT, SUSPECT_MEASUREMENT):
        erasure.points[measurement] = _pseudonymise_points(
            storage, measurement, person_id, cards, erasure.token
        )
    _erase_alerts(alerts_db, person_id, [name, *cards], erasure)
    erasure.dead_letters = _erase_dead_letters(deadletter_db, [f'"{person_id}"', name, *cards])
    with registry.change() as conn:
        _scrub(conn)
        marks = ",".join("?" * len(cards))
        if cards:
            erasure.captures = conn.execute(
                f"DELETE FROM enrol_captures WHERE card_uid IN ({marks})", cards
            ).rowcount
        erasure.card_history = conn.execute(
            "DELETE FROM card_assignments WHERE person_id = ?", (person_id,)
        ).rowcount
        conn.execute("DELETE FROM cards WHERE person_id = ?", (person_id,))
        conn.execute("DELETE FROM people WHERE person_id = ?", (person_id,))
    registry.query("PRAGMA wal_checkpoint(TRUNCATE)")
    with closing(db.connect(console_db)) as conn:
        erasure.hand_meals = hand_meals.pseudonymise(conn, person_id, erasure.token)
    kiosks = KioskErasures(console_db)
    try:
        devices = [d.device_id for d in registry.devices()]
        erasure.kiosks = kiosks.add(person_id, cards, erasure.token, devices)
    finally:
        kiosks.close()
    return erasure


def _scrub(conn: sqlite3.Connection) -> None:
    """Deleted rows overwritten with zeros, not left in free pages of the file (per connection)."""
    conn.execute("PRAGMA secure_delete = ON")


def _pseudonymise_points(
    storage: Storage, measurement: str, person_id: str, cards: list[str], token: str
) -> int:
    """Overwrite the person's points in place with `token` for both ids; returns how many."""
    matches = [f'"person_id" = {quote_string(person_id)}']
    matches += [f'"card_uid" = {quote_string(c)}' for c in cards]
    series = storage.query(
        f'SELECT "person_id", "card_uid" FROM {quote_ident(measurement)} '
        f"WHERE {' OR '.join(matches)} GROUP BY *"
    )
    lines: list[str] = []
    for s in series:
        for row in s.rows():
            # A card later held by someone else: their taps stay theirs.
            if row.get("person_id") not in (None, person_id):
                continue
            fields = {"person_id": token, "card_uid": token}
            lines.append(encode_point(measurement, s.tags, fields, int(row["time"])))
    for start in range(0, len(lines), _WRITE_BATCH):
        storage.write(lines[start : start + _WRITE_BATCH])
    return len(lines)


def _erase_alerts(path: Path, person_id: str, needles: list[str], erasure: Erasure) -> None:
    conn = connect_alerts(path)
    _scrub(conn)
    try:
        with conn:
            naming = " OR ".join(["person_id = ?", "subject = ?", *_mentions(needles)])
            params = [person_id, person_id, *needles]
            ids = [r[0] for r in conn.execute(f"SELECT id FROM alerts WHERE {naming}", params)]
            marks = ",".join("?" * len(ids))
            if ids:
                conn.execute(f"UPDATE visits SET alert_id = NULL WHERE alert_id IN ({marks})", ids)
                conn.execute(f"DELETE FROM alerts WHERE id IN ({marks})", ids)
            erasure.alerts = len(ids)
            erasure.flags = conn.execute(
                "DELETE FROM person_flags WHERE person_id = ?", (person_id,)
            ).rowcount
            conn.execute("DELETE FROM last_seen WHERE person_id = ?", (person_id,))
            erasure.visits_kept = conn.execute(
                "UPDATE visits SET person_id = ?, note = '' WHERE person_id = ?",
                (erasure.token, person_id),
            ).rowcount
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()


def _mentions(needles: list[str]) -> list[str]:
    return [
        "instr(lower(coalesce(detail_zh, '') || ' ' || coalesce(detail_en, '')), lower(?)) > 0"
        for _ in needles
    ]


def _erase_dead_letters(path: Path, needles: list[str]) -> int:
    if not path.exists():
        return 0
    conn: sqlite3.Connection = db.connect(path, synchronous="FULL")
    _scrub(conn)
    try:
        with conn:
            where = " OR ".join(
                "instr(lower(CAST(payload AS TEXT)), lower(?)) > 0 "
                "OR instr(lower(detail), lower(?)) > 0"
                for _ in needles
            )
            params = [n for n in needles for _ in range(2)]
            deleted = conn.execute(f"DELETE FROM dead_letters WHERE {where}", params).rowcount
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return deleted
    finally:
        conn.close()
