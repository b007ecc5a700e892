"""Where each registry site sits in the area hierarchy, read from the console database.

The areas table (console database, `warmcard area import`) is the one source of truth for the
hierarchy, including each site's place: a site's row is the leaf ``<township path>/<site_id>``.
The registry knows nothing of areas. A site the areas table does not place belongs to the root
only: users with a grant on ``/`` see it, nobody else does.

The console reads the table on almost every request, so it is cached and reloaded at most every
`ttl_s` seconds (an area import shows up within that time).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import Connection

from cloud_ingest.db import Database
from cloud_ingest.registry import areas
from cloud_ingest.registry.store import Registry


@dataclass(frozen=True)
class Hierarchy:
    """One loaded copy of the areas table."""

    site_paths: dict[str, str] = field(default_factory=dict)  # site_id -> leaf path
    areas: dict[str, areas.Area] = field(default_factory=dict)  # non-site areas by path
    children: dict[str, list[str]] = field(default_factory=dict)  # parent -> child area paths


def load_hierarchy(conn: Connection) -> Hierarchy:
    """Read every area and site placement."""
    site_paths: dict[str, str] = {}
    by_path: dict[str, areas.Area] = {}
    kids: dict[str, list[str]] = {}
    for area in areas.areas_under(conn, areas.ROOT):
        if area.level is areas.Level.SITE:
            site_paths[areas.segments(area.path)[-1]] = area.path
        else:
            by_path[area.path] = area
            kids.setdefault(area.parent, []).append(area.path)
    return Hierarchy(site_paths, by_path, kids)


def read_site_path(console: Database, site_id: str) -> str | None:
    """Where the areas table places the site, read now (no cache)."""
    with console.read() as conn:
        return areas.site_path(conn, site_id)


class SitePlacement:
    """Cached site → area path lookups and the areas above the sites; thread-safe."""

    def __init__(
        self,
        console: Database,
        registry: Registry,
        *,
        ttl_s: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.db = console  # the console store (cloud_ingest.console.db.open_store)
        self.registry = registry
        self.ttl_s = ttl_s
        self.clock = clock
        self._lock = threading.Lock()
        self._hierarchy = Hierarchy()
        self._loaded_at: float | None = None
        self.version = 0

    def hierarchy(self) -> Hierarchy:
        """The current copy, reloaded when older than ttl_s."""
        now = self.clock()
        with self._lock:
            if self._loaded_at is None or now - self._loaded_at >= self.ttl_s:
                with self.db.read() as conn:
                    fresh = load_hierarchy(conn)
                if fresh != self._hierarchy:
                    self._hierarchy = fresh
                    self.version += 1
                self._loaded_at = now
            return self._hierarchy

    def locate(self, site_id: str) -> str | None:
        """The site's area path; the root for a registry site not placed; None if unknown."""
        path = self.hierarchy().site_paths.get(site_id)
        if path is not None:
            return path
        return areas.ROOT if self.registry.site(site_id) is not None else None

    def site_locator(self, _console: Database, site_id: str) -> str | None:
        """AuthConfig.site_locator: the cached lookup (the console store is not read for it)."""
        return self.locate(site_id)
