"""SQLite registry of sites, devices, people and cards; the source of a device's site.

The site stamped on every tap comes from here, never from the payload. Lookups are served from
an in-memory cache that is reloaded when the registry's version (bumped by every import and
console edit, from any process) changes.

`cards` holds each card's current holder (what rosters are built from); `card_assignments`
keeps who held which card when, reconciled from `cards` in the same transaction as every
change (see `record_history`). Databases made before the history existed are migrated on open
(`PRAGMA user_version`), their active cards getting an open assignment with an unknown start.
"""

from __future__ import annotations

import hashlib
import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cloud_ingest import db as sqlite_db
from cloud_ingest.errors import RegistryError
from warmcard.contract import DeviceConfig, MealPeriod, MealWindow, Mode, Role, Roster, RosterEntry
from warmcard.timestamps import now_us

SCHEMA = """
CREATE TABLE IF NOT EXISTS sites (
    site_id TEXT PRIMARY KEY,
    name_zh TEXT NOT NULL,
    name_en TEXT NOT NULL DEFAULT '',
    tz TEXT NOT NULL DEFAULT 'Asia/Shanghai',
    capacity INTEGER,
    opening TEXT NOT NULL DEFAULT '07:00',
    closing TEXT NOT NULL DEFAULT '18:00',
    breakfast TEXT,
    lunch TEXT,
    dinner TEXT
);
CREATE TABLE IF NOT EXISTS devices (
    device_id TEXT PRIMARY KEY,
    site_id TEXT NOT NULL REFERENCES sites (site_id),
    mode TEXT NOT NULL CHECK (mode IN ('entrance', 'canteen')),
    debounce_s REAL NOT NULL DEFAULT 10
);
CREATE TABLE IF NOT EXISTS people (
    person_id TEXT PRIMARY KEY,
    display_name TEXT NOT NULL,
    -- The person's home courtyard: their name and cards go only into this site's roster.
    site_id TEXT NOT NULL REFERENCES sites (site_id)
);
CREATE INDEX IF NOT EXISTS people_site ON people (site_id);
CREATE TABLE IF NOT EXISTS cards (
    card_uid TEXT PRIMARY KEY,
    person_id TEXT NOT NULL REFERENCES people (person_id),
    active INTEGER NOT NULL DEFAULT 1
);
CREATE INDEX IF NOT EXISTS cards_person ON cards (person_id);
CREATE INDEX IF NOT EXISTS devices_site ON devices (site_id);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
INSERT OR IGNORE INTO meta (key, value) VALUES ('version', 0);
"""

# Schema changes after the first release, applied in order; user_version counts those applied.
MIGRATIONS: tuple[str, ...] = (
    # 1: card history and enrol mode.
    """
    CREATE TABLE IF NOT EXISTS card_assignments (
        id INTEGER PRIMARY KEY,
        card_uid TEXT NOT NULL,
        person_id TEXT NOT NULL REFERENCES people (person_id),
        valid_from INTEGER,             -- UTC µs; NULL = held since before history was kept
        valid_to INTEGER                -- UTC µs, exclusive; NULL = holds it now
    );
    CREATE INDEX IF NOT EXISTS card_assignments_card ON card_assignments (card_uid, valid_from);
    CREATE INDEX IF NOT EXISTS card_assignments_person ON card_assignments (person_id);
    CREATE UNIQUE INDEX IF NOT EXISTS card_assignments_open
        ON card_assignments (card_uid) WHERE valid_to IS NULL;
    INSERT INTO card_assignments (card_uid, person_id, valid_from, valid_to)
        SELECT card_uid, person_id, NULL, NULL FROM cards WHERE active = 1;
    CREATE TABLE IF NOT EXISTS enrol_windows (
        device_id TEXT PRIMARY KEY REFERENCES devices (device_id),
        started_us INTEGER NOT NULL,
        until_us INTEGER NOT NULL,
        started_by TEXT NOT NULL
    );
    CREATE TABLE IF NOT EXISTS enrol_captures (
        id INTEGER PRIMARY KEY,
        event_id TEXT NOT NULL UNIQUE,  -- a redelivered tap is captured once
        device_id TEXT NOT NULL,
        card_uid TEXT NOT NULL,
        ts_us INTEGER NOT NULL,
        captured_us INTEGER NOT NULL
    );
    CREATE INDEX IF NOT EXISTS enrol_captures_device ON enrol_captures (device_id, ts_us);
    """,
    # 2: staff. A staff member's card opens the canteen kiosk's list for meals recorded by hand.
    """
    ALTER TABLE people ADD COLUMN role TEXT NOT NULL DEFAULT 'elder'
        CHECK (role IN ('elder', 'staff'));
    """,
)


def migrate(db: sqlite3.Connection) -> int:
    """Apply the migrations this file lacks, each in its own transaction; returns the version."""
    for number, script in enumerate(MIGRATIONS, start=1):
        db.execute("BEGIN IMMEDIATE")  # two processes opening an old file: one migrates
        try:
            if db.execute("PRAGMA user_version").fetchone()[0] < number:
                for statement in _statements(script):
                    db.execute(statement)
                db.execute(f"PRAGMA user_version = {number}")
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
    return int(db.execute("PRAGMA user_version").fetchone()[0])


def _statements(script: str) -> list[str]:
    # executescript() would commit our transaction; split on complete statements instead.
    out, buffer = [], ""
    for line in script.splitlines(keepends=True):
        buffer += line
        if sqlite3.complete_statement(buffer):
            out.append(buffer.strip())
            buffer = ""
    return [s for s in out if s]


def record_history(db: sqlite3.Connection, now: int) -> None:
    """Bring card_assignments in line with cards; call inside the transaction that changed cards.

    An open assignment whose card no longer belongs to that person (moved or deactivated) is
    closed at `now`; an active card without an open assignment gets one from `now`.
    """
    db.execute(
        "UPDATE card_assignments SET valid_to = ? WHERE valid_to IS NULL AND NOT EXISTS ("
        "SELECT 1 FROM cards c WHERE c.card_uid = card_assignments.card_uid "
        "AND c.person_id = card_assignments.person_id AND c.active = 1)",
        (now,),
    )
    db.execute(
        "INSERT INTO card_assignments (card_uid, person_id, valid_from, valid_to) "
        "SELECT c.card_uid, c.person_id, ?, NULL FROM cards c WHERE c.active = 1 AND NOT EXISTS "
        "(SELECT 1 FROM card_assignments a WHERE a.card_uid = c.card_uid AND a.valid_to IS NULL)",
        (now,),
    )


def bump_version(db: sqlite3.Connection) -> int:
    """Mark a change, so every process reloads and the service republishes; inside the txn."""
    db.execute("UPDATE meta SET value = value + 1 WHERE key = 'version'")
    return int(db.execute("SELECT value FROM meta WHERE key = 'version'").fetchone()[0])


MEAL_COLUMNS = tuple(p.value for p in MealPeriod)


@dataclass(frozen=True)
class Site:
    site_id: str
    name_zh: str
    name_en: str
    tz: str
    capacity: int | None
    opening: str
    closing: str
    meals: tuple[MealWindow, ...]


@dataclass(frozen=True)
class Device:
    device_id: str
    site_id: str
    mode: Mode
    debounce_s: float


def parse_window(period: str, text: str) -> MealWindow:
    """`11:00-13:00` as a MealWindow; raises ValueError."""
    start, sep, end = text.partition("-")
    if not sep:
        raise ValueError(f"{period} window {text!r} must be HH:MM-HH:MM, e.g. 11:00-13:00")
    return MealWindow(period=MealPeriod(period), start=start.strip(), end=end.strip())


class Registry:
    """One SQLite file; safe to share between threads."""

    def __init__(self, path: Path | str, *, clock: Callable[[], int] = now_us) -> None:
        self.path = Path(path)
        self.clock = clock
        try:
            self._db = sqlite_db.connect(path, autocommit=True, shared=True)
            self._db.executescript(SCHEMA)
            migrate(self._db)
        except sqlite3.Error as exc:
            raise RegistryError(f"cannot open registry {path}: {exc}") from None
        self._lock = threading.RLock()
        self._version = -1
        self._devices: dict[str, Device] = {}
        self._sites: dict[str, Site] = {}
        self.refresh()

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # ------------------------------------------------------------------ data access
    #
    # Every module outside this one reads and writes the registry through these three, so the
    # connection, its lock and the transaction rules stay in one place.

    def query(self, sql: str, params: Sequence[object] = ()) -> list[tuple[Any, ...]]:
        """All rows of one read, under the registry's lock."""
        with self._lock:
            return self._db.execute(sql, params).fetchall()

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction (BEGIN IMMEDIATE ... COMMIT, rolled back on any error).

        For rows that are not registry data proper (enrol windows and captures): the version
        is not bumped, so no roster is republished.
        """
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
                self._db.execute("COMMIT")
            except BaseException:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                raise

    def prune_history(self, before_us: int) -> int:
        """Delete card assignments that ended before `before_us` (retention); a card's current
        holder is never deleted. Not registry data proper: no version bump, no roster."""
        with self.write() as db:
            return db.execute(
                "DELETE FROM card_assignments WHERE valid_to IS NOT NULL AND valid_to < ?",
                (before_us,),
            ).rowcount

    @contextmanager
    def change(self) -> Iterator[sqlite3.Connection]:
        """One edit of registry data: card history reconciled and the version bumped before it
        commits, the cache refreshed after (the service then republishes changed rosters)."""
        with self.write() as db:
            yield db
            record_history(db, self.clock())
            bump_version(db)
        self.refresh()

    # ------------------------------------------------------------------ cache

    def stored_version(self) -> int:
        with self._lock:
            row = self._db.execute("SELECT value FROM meta WHERE key = 'version'").fetchone()
        return int(row[0])

    @property
    def version(self) -> int:
        return self._version

    def refresh(self) -> bool:
        """Reload the cache if an import changed the registry; True when it did."""
        with self._lock:
            version = self.stored_version()
            if version == self._version:
                return False
            sites = {}
            for row in self._db.execute(
                "SELECT site_id, name_zh, name_en, tz, capacity, opening, closing, "
                "breakfast, lunch, dinner FROM sites"
            ):
                meals = tuple(
                    parse_window(period, text)
                    for period, text in zip(MEAL_COLUMNS, row[7:10], strict=True)
                    if text
                )
                sites[row[0]] = Site(
                    site_id=row[0],
                    name_zh=row[1],
                    name_en=row[2],
                    tz=row[3],
                    capacity=row[4],
                    opening=row[5],
                    closing=row[6],
                    meals=meals,
                )
            devices = {
                row[0]: Device(row[0], row[1], Mode(row[2]), float(row[3]))
                for row in self._db.execute(
                    "SELECT device_id, site_id, mode, debounce_s FROM devices"
                )
            }
            self._sites, self._devices, self._version = sites, devices, version
            return True

    def site_of(self, device_id: str) -> str | None:
        device = self._devices.get(device_id)
        return device.site_id if device else None

    def device(self, device_id: str) -> Device | None:
        return self._devices.get(device_id)

    def site(self, site_id: str) -> Site | None:
        return self._sites.get(site_id)

    def sites(self) -> list[Site]:
        return sorted(self._sites.values(), key=lambda s: s.site_id)

    def devices(self, site_id: str | None = None) -> list[Device]:
        devices = sorted(self._devices.values(), key=lambda d: d.device_id)
        return [d for d in devices if site_id is None or d.site_id == site_id]

    def people_homes(self, person_ids: list[str]) -> dict[str, tuple[str, str]]:
        """person_id -> (display_name, home site_id) for the ids that are registered."""
        if not person_ids:
            return {}
        out: dict[str, tuple[str, str]] = {}
        with self._lock:
            for start in range(0, len(person_ids), 500):  # SQLite's bound-parameter limit
                chunk = person_ids[start : start + 500]
                marks = ",".join("?" * len(chunk))
                for person, name, site in self._db.execute(
                    f"SELECT person_id, display_name, site_id FROM people "
                    f"WHERE person_id IN ({marks})",
                    chunk,
                ):
                    out[person] = (name, site)
        return out

    # ------------------------------------------------------------------ downlink payloads

    def device_config(self, device_id: str) -> DeviceConfig:
        device = self._devices.get(device_id)
        if device is None:
            raise RegistryError(f"device {device_id} is not in the registry; import it first")
        site = self._sites[device.site_id]
        window = self.query(
            "SELECT until_us FROM enrol_windows WHERE device_id = ? AND until_us > ?",
            (device_id, self.clock()),
        )
        return DeviceConfig(
            device_id=device.device_id,
            site_id=site.site_id,
            mode=device.mode,
            tz=site.tz,
            opening=site.opening,
            closing=site.closing,
            debounce_s=device.debounce_s,
            meals=list(site.meals),
            site_name=site.name_zh[:64],
            enrol_until_us=int(window[0][0]) if window else 0,
        )

    def roster(self, site_id: str) -> Roster:
        """Active cards of this site's people, with names and (staff only) role; version is a
        content hash."""
        with self._lock:
            rows = self._db.execute(
                "SELECT c.card_uid, c.person_id, p.display_name, p.role FROM cards c "
                "JOIN people p USING (person_id) WHERE c.active = 1 AND p.site_id = ? "
                "ORDER BY c.card_uid",
                (site_id,),
            ).fetchall()
        entries = [
            RosterEntry(card_uid=u, person_id=p, display_name=n, role=Role(r))
            for u, p, n, r in rows
        ]
        digest = hashlib.sha256()
        for uid, person, name, role in rows:
            # An elder's line hashes as before this column existed: versions do not churn.
            extra = "" if role == Role.ELDER else f"\t{role}"
            digest.update(f"{uid}\t{person}\t{name}{extra}\n".encode())
        return Roster(site_id=site_id, version=digest.hexdigest()[:16], entries=entries)
