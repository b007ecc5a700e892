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
again. Running it again after success finds nothing and changes nothing. Each store is scrubbed
once its deletes commit (`Database.scrub`), so the erased rows do not stay in free space of its
files (SQLite) or as dead rows (PostgreSQL).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field

from sqlalchemy import Connection, text

from cloud_ingest.alerts.store import AlertStore
from cloud_ingest.console import hand_meals
from cloud_ingest.console.kiosk_erasure import KioskErasures
from cloud_ingest.db import Database
from cloud_ingest.errors import RegistryEditError
from cloud_ingest.pipeline.deadletter import DeadLetterStore
from cloud_ingest.pipeline.influx import Storage, quote_ident, quote_string
from cloud_ingest.pipeline.lineprotocol import MEASUREMENT, SUSPECT_MEASUREMENT, encode_point
from cloud_ingest.registry.contacts import delete_contacts
from cloud_ingest.registry.store import IN_CHUNK, Registry, statement

TOKEN_PREFIX = "erased-"
_WRITE_BATCH = 5000
ALERT_TABLES = ("alerts", "person_flags", "last_seen", "visits")
# What the registry part deletes from, and the history a change records beside it.
REGISTRY_TABLES = ("enrol_captures", "card_assignments", "cards", "person_contacts", "people")


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
    alerts: AlertStore,
    deadletters: DeadLetterStore,
    kiosks: KioskErasures,
) -> Erasure:
    """Erase `person_id` everywhere the cloud keeps it; RegistryEditError if unknown."""
    found = registry.query(
        "SELECT display_name, site_id FROM people WHERE person_id = :person", {"person": person_id}
    )
    if not found:
        raise RegistryEditError(f"人员不存在 no person {person_id!r}")
    name, site_id = found[0]
    cards = sorted(
        {
            r[0]
            for r in registry.query(
                "SELECT card_uid FROM cards WHERE person_id = :person UNION "
                "SELECT card_uid FROM card_assignments WHERE person_id = :person",
                {"person": person_id},
            )
        }
    )
    erasure = Erasure(person_id, site_id, TOKEN_PREFIX + secrets.token_hex(8), cards=len(cards))
    for measurement in (MEASUREMENT, SUSPECT_MEASUREMENT):
        erasure.points[measurement] = _pseudonymise_points(
            storage, measurement, person_id, cards, erasure.token
        )
    _erase_alerts(alerts.db, person_id, [name, *cards], erasure)
    erasure.dead_letters = _erase_dead_letters(deadletters.db, [f'"{person_id}"', name, *cards])
    person = {"person": person_id}
    with registry.change() as rconn:
        if cards:
            erasure.captures = rconn.execute(
                statement("DELETE FROM enrol_captures WHERE card_uid IN :cards", {"cards": cards}),
                {"cards": cards},
            ).rowcount
        erasure.card_history = rconn.execute(
            text("DELETE FROM card_assignments WHERE person_id = :person"), person
        ).rowcount
        rconn.execute(text("DELETE FROM cards WHERE person_id = :person"), person)
        delete_contacts(rconn, person_id)
        rconn.execute(text("DELETE FROM people WHERE person_id = :person"), person)
    registry.db.scrub(REGISTRY_TABLES)
    with kiosks.db.write() as cconn:  # the console store: hand meals and kiosk erasures
        erasure.hand_meals = hand_meals.pseudonymise(cconn, person_id, erasure.token)
    if erasure.hand_meals:  # their reasons were text a person typed
        kiosks.db.scrub(("hand_meals",))
    devices = [d.device_id for d in registry.devices()]
    erasure.kiosks = kiosks.add(person_id, cards, erasure.token, devices)
    return erasure


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


def _erase_alerts(db: Database, person_id: str, needles: list[str], erasure: Erasure) -> None:
    """Delete the person's alerts (theirs, or naming them, a card or their name in the text),
    flags and last sighting; keep their visits under the token with the note emptied."""
    with db.write() as conn:
        rows = conn.execute(
            text("SELECT id, person_id, subject, detail_zh, detail_en FROM alerts")
        ).all()
        ids = [
            int(r[0])
            for r in rows
            if person_id in (r[1], r[2]) or _mentions(f"{r[3] or ''} {r[4] or ''}", needles)
        ]
        _delete_ids(conn, "UPDATE visits SET alert_id = NULL WHERE alert_id IN :ids", ids)
        _delete_ids(conn, "DELETE FROM alerts WHERE id IN :ids", ids)
        erasure.alerts = len(ids)
        person = {"person": person_id}
        erasure.flags = conn.execute(
            text("DELETE FROM person_flags WHERE person_id = :person"), person
        ).rowcount
        conn.execute(text("DELETE FROM last_seen WHERE person_id = :person"), person)
        erasure.visits_kept = conn.execute(
            text("UPDATE visits SET person_id = :token, note = '' WHERE person_id = :person"),
            {"token": erasure.token, **person},
        ).rowcount
    db.scrub(ALERT_TABLES)


def _mentions(text_: str, needles: list[str]) -> bool:
    """Any needle in the text, whatever the case."""
    lowered = text_.lower()
    return any(n.lower() in lowered for n in needles)


def _delete_ids(conn: Connection, sql: str, ids: list[int]) -> int:
    """Run `sql` (its `IN :ids`) over the ids in chunks; returns the rows it touched."""
    chunks = [{"ids": ids[i : i + IN_CHUNK]} for i in range(0, len(ids), IN_CHUNK)]
    return sum(conn.execute(statement(sql, c), c).rowcount for c in chunks)


def _erase_dead_letters(db: Database, needles: list[str]) -> int:
    """Delete every letter whose payload or detail holds a needle (whatever the case)."""
    with db.write() as conn:
        rows = conn.execute(text("SELECT id, payload, detail FROM dead_letters"))
        ids = [
            int(r[0])
            for r in rows
            if _mentions(bytes(r[1]).decode("utf-8", "replace") + "\n" + r[2], needles)
        ]
        deleted = _delete_ids(conn, "DELETE FROM dead_letters WHERE id IN :ids", ids)
    db.scrub(["dead_letters"])
    return deleted
