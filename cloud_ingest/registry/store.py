"""The registry of sites, devices, people and cards; the source of a device's site.

The site stamped on every tap comes from here, never from the payload. Lookups are served from
an in-memory cache that is reloaded when the registry's version (bumped by every import and
console edit, from any process) changes.

`cards` holds each card's current holder (what rosters are built from); `card_assignments`
keeps who held which card when, reconciled from `cards` in the same transaction as every
change (see `record_history`). The schema is made and changed by Alembic
(cloud_ingest/migrations/registry/); the store lives in an SQLite file or in PostgreSQL
(cloud_ingest.db).
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Executable, String, TextClause, bindparam, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from cloud_ingest.db import Database, url_of
from cloud_ingest.errors import RegistryError
from warmcard.contract import DeviceConfig, MealPeriod, MealWindow, Mode, Role, Roster, RosterEntry
from warmcard.timestamps import now_us

# SQLite's bound-parameter limit: an IN list longer than this is read in chunks.
IN_CHUNK = 500

Params = Mapping[str, object]


def statement(sql: str, params: Params | None = None) -> TextClause:
    """`sql` as a text() statement whose list- and tuple-valued parameters expand
    (`WHERE person_id IN :ids` with `{"ids": [...]}`); keep such lists to IN_CHUNK."""
    stmt = text(sql)
    for name, value in (params or {}).items():
        if isinstance(value, list | tuple):
            # Typed, so that an empty list compares with a text column on PostgreSQL too.
            text_ids = all(isinstance(v, str) for v in value)
            stmt = stmt.bindparams(
                bindparam(name, expanding=True, type_=String if text_ids else None)
            )
    return stmt


def record_history(db: Connection, now: int) -> None:
    """Bring card_assignments in line with cards; call inside the transaction that changed cards.

    An open assignment whose card no longer belongs to that person (moved or deactivated) is
    closed at `now`; an active card without an open assignment gets one from `now`.
    """
    db.execute(
        text(
            "UPDATE card_assignments SET valid_to = :now WHERE valid_to IS NULL AND NOT EXISTS ("
            "SELECT 1 FROM cards c WHERE c.card_uid = card_assignments.card_uid "
            "AND c.person_id = card_assignments.person_id AND c.active = 1)"
        ),
        {"now": now},
    )
    db.execute(
        text(
            "INSERT INTO card_assignments (card_uid, person_id, valid_from, valid_to) "
            "SELECT c.card_uid, c.person_id, :now, NULL FROM cards c WHERE c.active = 1 "
            "AND NOT EXISTS (SELECT 1 FROM card_assignments a "
            "WHERE a.card_uid = c.card_uid AND a.valid_to IS NULL)"
        ),
        {"now": now},
    )


def bump_version(db: Connection) -> int:
    """Mark a change, so every process reloads and the service republishes; inside the txn."""
    return int(
        db.execute(
            text("UPDATE meta SET value = value + 1 WHERE key = 'version' RETURNING value")
        ).scalar_one()
    )


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


def parse_window(period: str, window: str) -> MealWindow:
    """`11:00-13:00` as a MealWindow; raises ValueError."""
    start, sep, end = window.partition("-")
    if not sep:
        raise ValueError(f"{period} window {window!r} must be HH:MM-HH:MM, e.g. 11:00-13:00")
    return MealWindow(period=MealPeriod(period), start=start.strip(), end=end.strip())


class Registry:
    """One registry database (an SQLite file or PostgreSQL URL); safe to share between threads."""

    def __init__(self, location: Path | str, *, clock: Callable[[], int] = now_us) -> None:
        self.clock = clock
        try:
            self.db = Database(location, "registry")
        except SQLAlchemyError as exc:
            where = make_url(url_of(location)).render_as_string(hide_password=True)
            raise RegistryError(f"cannot open registry {where}: {exc}") from None
        self._refreshing = threading.Lock()  # one reload at a time: never an older cache last
        self._version = -1
        self._devices: dict[str, Device] = {}
        self._sites: dict[str, Site] = {}
        self.refresh()

    def close(self) -> None:
        self.db.close()

    # ------------------------------------------------------------------ data access
    #
    # Every module outside this one reads and writes the registry through these three, so the
    # database and the transaction rules stay in one place.

    def query(self, sql: str | Executable, params: Params | None = None) -> list[tuple[Any, ...]]:
        """All rows of one read: `text()`-style SQL with named parameters (`:name`), list
        values expanding (see `statement`), or a Core statement."""
        stmt = statement(sql, params) if isinstance(sql, str) else sql
        with self.db.read() as conn:
            return [tuple(row) for row in conn.execute(stmt, dict(params or {}))]

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """One write transaction, the registry's only writer while it runs; rolled back on any
        error.

        For rows that are not registry data proper (enrol windows and captures): the version
        is not bumped, so no roster is republished.
        """
        with self.db.write() as conn:
            yield conn

    def prune_history(self, before_us: int) -> int:
        """Delete card assignments that ended before `before_us` (retention); a card's current
        holder is never deleted. Not registry data proper: no version bump, no roster."""
        with self.write() as db:
            return db.execute(
                text(
                    "DELETE FROM card_assignments WHERE valid_to IS NOT NULL AND valid_to < :before"
                ),
                {"before": before_us},
            ).rowcount

    @contextmanager
    def change(self) -> Iterator[Connection]:
        """One edit of registry data: card history reconciled and the version bumped before it
        commits, the cache refreshed after (the service then republishes changed rosters)."""
        with self.write() as db:
            yield db
            record_history(db, self.clock())
            bump_version(db)
        self.refresh()

    # ------------------------------------------------------------------ cache

    def stored_version(self) -> int:
        with self.db.read() as conn:
            return _stored_version(conn)

    @property
    def version(self) -> int:
        return self._version

    def refresh(self) -> bool:
        """Reload the cache if an import changed the registry; True when it did."""
        with self._refreshing, self.db.read() as conn:
            # The version first: on PostgreSQL each statement sees the newest commit, so rows
            # newer than the version read only cost one more reload later, never a stale cache.
            version = _stored_version(conn)
            if version == self._version:
                return False
            sites = {}
            for row in conn.execute(
                text(
                    "SELECT site_id, name_zh, name_en, tz, capacity, opening, closing, "
                    "breakfast, lunch, dinner FROM sites"
                )
            ):
                meals = tuple(
                    parse_window(period, window)
                    for period, window in zip(MEAL_COLUMNS, row[7:10], strict=True)
                    if window
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
                for row in conn.execute(
                    text("SELECT device_id, site_id, mode, debounce_s FROM devices")
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
        out: dict[str, tuple[str, str]] = {}
        ids = list(dict.fromkeys(person_ids))
        for start in range(0, len(ids), IN_CHUNK):
            for person, name, site in self.query(
                "SELECT person_id, display_name, site_id FROM people WHERE person_id IN :ids",
                {"ids": ids[start : start + IN_CHUNK]},
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
            "SELECT until_us FROM enrol_windows WHERE device_id = :device AND until_us > :now",
            {"device": device_id, "now": self.clock()},
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
        rows = self.query(
            "SELECT c.card_uid, c.person_id, p.display_name, p.role FROM cards c "
            "JOIN people p ON p.person_id = c.person_id WHERE c.active = 1 "
            "AND p.site_id = :site ORDER BY c.card_uid",
            {"site": site_id},
        )
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


def _stored_version(conn: Connection) -> int:
    return int(conn.execute(text("SELECT value FROM meta WHERE key = 'version'")).scalar_one())
