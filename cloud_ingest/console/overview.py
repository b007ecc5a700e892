"""The console overview: today's numbers per site, filtered to a user's areas, paged, rolled up.

Everything comes from live state (memory), never from InfluxDB per request: one table of rows
for all sites and the roll-ups per area, kept current with each live-state change (only the
sites that changed are re-read) and shared by every request and stream; each request filters
that table for its user (grants), area, search text and flags, sorts it and cuts one page.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from cloud_ingest.console.roles import Action, User, can, sites_allowed
from cloud_ingest.errors import AreaError
from cloud_ingest.pipeline.live import LiveState
from cloud_ingest.registry import areas
from cloud_ingest.registry.placement import Hierarchy, SitePlacement

ROLLUP_METRICS = (
    "sites",
    "present",
    "capacity",
    "arrivals",
    "meals_total",
    "meal_repeats",
    "kiosks",
    "kiosks_offline",
)
SORT_KEYS: dict[str, Callable[[dict[str, Any]], Any]] = {
    "area": lambda r: (r["area_path"], r["name_zh"], r["site_id"]),
    "name": lambda r: (r["name_zh"], r["site_id"]),
    "present": lambda r: r["present"],
    "arrivals": lambda r: r["arrivals"],
    "meals": lambda r: r["meals_total"],
    "capacity": lambda r: r["capacity"] or 0,
    "offline": lambda r: r["kiosks_offline"],
}
SORTS = tuple(k for key in SORT_KEYS for k in (key, "-" + key))
MAX_PAGE_SIZE = 200
REBUILD_EVERY_S = 5.0  # device "stale" depends on the clock, not only on changes


class AreaNotVisible(LookupError):
    """The area does not exist or lies outside the user's grants (answered as 404)."""


@dataclass(frozen=True)
class OverviewQuery:
    area: str | None = None  # None: the user's default scope
    q: str = ""
    offline: bool = False  # only sites with a kiosk not online
    has_meals: bool = False  # only sites that served meals today
    sort: str = "area"
    page: int = 1
    page_size: int = 50


@dataclass(frozen=True)
class _Table:
    key: tuple[int, ...]
    rows: dict[str, dict[str, Any]]  # site_id -> row
    order: list[str]  # site ids by area path, then name
    totals: dict[str, dict[str, int]]  # area path -> metric -> sum
    hierarchy: Hierarchy


def _kiosk_counts(devices: list[dict[str, Any]]) -> tuple[int, int]:
    offline = sum(1 for d in devices if d.get("state") != "online")
    return len(devices), offline


class Overview:
    """Shared by the overview routes and streams of one app."""

    def __init__(
        self,
        live: LiveState,
        placement: SitePlacement,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.live = live
        self.placement = placement
        self.clock = clock
        self._lock = threading.Lock()
        self._table: _Table | None = None
        self._visible: dict[tuple[object, ...], frozenset[str]] = {}

    # ------------------------------------------------------------------ the shared table

    def _row(self, raw: dict[str, Any], hierarchy: Hierarchy) -> dict[str, Any]:
        leaf = hierarchy.site_paths.get(raw["site_id"])
        area_path = (areas.parent_of(leaf) or areas.ROOT) if leaf else areas.ROOT
        area = hierarchy.areas.get(area_path)
        kiosks, offline = _kiosk_counts(raw["devices"])
        return {
            **raw,
            "area_path": area_path,
            "placed": leaf is not None,
            "area_name_zh": area.name_zh if area else "",
            "area_name_en": area.name_en if area else "",
            "kiosks": kiosks,
            "kiosks_offline": offline,
            "sites": 1,
        }

    def table(self) -> _Table:
        """All sites' rows and area totals, current with live state, registry and areas."""
        hierarchy = self.placement.hierarchy()
        key = (
            self.live.version,
            self.live.registry.version,
            self.placement.version,
            int(self.clock() // REBUILD_EVERY_S),
        )
        with self._lock:
            previous = self._table
        if previous is not None and previous.key == key:
            return previous
        table = None
        if previous is not None and previous.key[1:] == key[1:]:
            table = self._patched(previous)
        if table is None:
            table = self._built(key, hierarchy)
        with self._lock:
            self._table = table
        return table

    def _built(self, key: tuple[int, ...], hierarchy: Hierarchy) -> _Table:
        rows = {r["site_id"]: self._row(r, hierarchy) for r in self.live.site_rows()}
        order = sorted(rows, key=lambda s: SORT_KEYS["area"](rows[s]))
        totals: dict[str, dict[str, int]] = {}
        for metric in ROLLUP_METRICS:
            per_site = {s: r[metric] or 0 for s, r in rows.items()}
            rolled = areas.roll_up(per_site, hierarchy.site_paths, hierarchy.areas)
            for path, value in rolled.totals.items():
                totals.setdefault(path, {})[metric] = int(value)
            # Unplaced sites belong to the root only.
            root = totals.setdefault(areas.ROOT, {})
            root[metric] = int(root.get(metric, 0) + sum(rolled.unplaced.values()))
        return _Table(key, rows, order, totals, hierarchy)

    def _patched(self, previous: _Table) -> _Table | None:
        """`previous` with only the sites changed since it was built re-read, and their
        differences added to the areas above them; None when live state cannot say which.

        Under a stream of taps live state changes many times a second; rebuilding every site's
        row and roll-up for each change cost ~50 ms at Dali's 1,663 sites (bench/dali_day.py).
        """
        version, changed = self.live.changes_since(previous.key[0])
        if changed is None or not changed <= previous.rows.keys():
            return None
        hierarchy = previous.hierarchy
        rows = dict(previous.rows)
        totals = dict(previous.totals)
        copied: set[str] = set()
        for raw in self.live.site_rows(changed):
            new = self._row(raw, hierarchy)
            old = rows[new["site_id"]]
            rows[new["site_id"]] = new
            leaf = hierarchy.site_paths.get(new["site_id"])
            paths = areas.ancestors(leaf) if leaf is not None else [areas.ROOT]
            for metric in ROLLUP_METRICS:
                delta = int((new[metric] or 0) - (old[metric] or 0))
                if not delta:
                    continue
                for path in paths:
                    if path not in copied:
                        totals[path] = dict(totals.get(path, {}))
                        copied.add(path)
                    totals[path][metric] = totals[path].get(metric, 0) + delta
        return _Table((version, *previous.key[1:]), rows, previous.order, totals, hierarchy)

    # ------------------------------------------------------------------ per user

    def visible(self, user: User, table: _Table | None = None) -> frozenset[str]:
        """Site ids the user may view (cached per grant set and hierarchy)."""
        table = table or self.table()
        key = (user.grants, table.key[1], table.key[2])
        with self._lock:
            cached = self._visible.get(key)
        if cached is not None:
            return cached
        result = sites_allowed(user, Action.VIEW, table.rows, table.hierarchy.site_paths)
        with self._lock:
            if len(self._visible) > 256:
                self._visible.clear()
            self._visible[key] = result
        return result

    def default_scope(self, user: User) -> str:
        """Root for a root grant or several grants; else the one granted area (or site)."""
        tops = _top_grants(user)
        return tops[0] if len(tops) == 1 else areas.ROOT

    def scope(self, user: User, area: str | None, table: _Table | None = None) -> str:
        """A valid, visible scope path; raise AreaNotVisible otherwise."""
        if area is None:
            return self.default_scope(user)
        try:
            path = areas.parse_path(area)
        except AreaError:
            raise AreaNotVisible(area) from None
        if path == areas.ROOT:
            return path
        table = table or self.table()
        # A courtyard head's grant is a site's own leaf path: a scope like any area.
        known = path in table.hierarchy.areas or _site_at(table, path) is not None
        if not known or not can(user, Action.VIEW, path):
            raise AreaNotVisible(area)
        return path

    def page(self, user: User, query: OverviewQuery) -> dict[str, Any]:
        """One page of the overview for this user, with the roll-up of the scope."""
        table = self.table()
        scope = self.scope(user, query.area, table)
        inside = set(areas.sites_in(scope, self.visible(user, table), table.hierarchy.site_paths))
        needle = query.q.strip().lower()
        rows = []
        for site_id in table.order:
            if site_id not in inside:
                continue
            row = table.rows[site_id]
            if query.offline and not row["kiosks_offline"]:
                continue
            if query.has_meals and not row["meals_total"]:
                continue
            if needle and not _matches(row, needle):
                continue
            rows.append(row)
        sort = query.sort if query.sort in SORTS else "area"
        if sort != "area":
            key = SORT_KEYS[sort.lstrip("-")]
            # Ties keep the area order (sorted() is stable), so paging is deterministic.
            rows.sort(key=key, reverse=sort.startswith("-"))
        size = max(1, min(query.page_size, MAX_PAGE_SIZE))
        pages = max(1, -(-len(rows) // size))
        page = max(1, min(query.page, pages))
        start = (page - 1) * size
        return {
            "version": table.key[0],
            "scope": scope,
            "total": len(rows),
            "page": page,
            "page_size": size,
            "pages": pages,
            "sort": sort,
            "sites": rows[start : start + size],
            "rollup": self.rollup(user, scope, table),
        }

    def rows_for(
        self, user: User, site_ids: Iterable[str] | None, scope: str
    ) -> list[dict[str, Any]]:
        """Current rows of these sites (all when None) that the user may view inside `scope`."""
        table = self.table()
        inside = set(areas.sites_in(scope, self.visible(user, table), table.hierarchy.site_paths))
        ids = table.order if site_ids is None else sorted(set(site_ids))
        return [table.rows[s] for s in ids if s in inside]

    def site_row(self, user: User, site_id: str) -> dict[str, Any] | None:
        """The site's current row, or None when it is unknown or not the user's to view."""
        rows = self.rows_for(user, [site_id], areas.ROOT)
        return rows[0] if rows else None

    def occupancy(self, user: User, site: str | None = None) -> dict[str, Any]:
        """The live snapshot cut to the user's sites (and to `site` when given)."""
        visible = self.visible(user)
        wanted = {site} & visible if site is not None else visible
        doc = self.live.snapshot()
        doc["sites"] = [s for s in doc["sites"] if s["site_id"] in wanted]
        return doc

    def rollup(self, user: User, scope: str, table: _Table | None = None) -> dict[str, Any]:
        """Totals of the scope, of each area directly inside it, and the breadcrumb above it."""
        table = table or self.table()
        if scope == areas.ROOT and not can(user, Action.VIEW, areas.ROOT):
            # Several grants and no root: the scope is "all my areas".
            children = _top_grants(user)
            visible = self.visible(user, table)
            own = {m: 0 for m in ROLLUP_METRICS}
            for site_id in visible:
                for m in ROLLUP_METRICS:
                    own[m] += table.rows[site_id][m] or 0
            scope_node = {**_node(table, areas.ROOT), **own}
        else:
            children = table.hierarchy.children.get(scope, [])
            scope_node = _node(table, scope)
        trail = [
            _node(table, p)
            for p in areas.ancestors(scope, include_self=False)
            if can(user, Action.VIEW, p)
        ]
        return {
            "scope": scope_node,
            "children": [_node(table, c) for c in children],
            "trail": trail,
        }


def _top_grants(user: User) -> list[str]:
    """Granted areas not inside another of the user's grants, by path."""
    paths = sorted({g.area for g in user.grants})
    return [p for p in paths if not any(o != p and areas.is_under(p, o) for o in paths)]


def _matches(row: dict[str, Any], needle: str) -> bool:
    return any(
        needle in str(row[k]).lower()
        for k in ("site_id", "name_zh", "name_en", "area_name_zh", "area_name_en")
    )


def _site_at(table: _Table, path: str) -> dict[str, Any] | None:
    """The row of the site placed at this leaf path, if any (and if the live state has it)."""
    segments = areas.segments(path)
    if not segments or table.hierarchy.site_paths.get(segments[-1]) != path:
        return None
    return table.rows.get(segments[-1])


def _node(table: _Table, path: str) -> dict[str, Any]:
    area = table.hierarchy.areas.get(path)
    site = None if area else _site_at(table, path)
    if area:
        level, zh, en = area.level.value, area.name_zh, area.name_en
    elif site:
        level, zh, en = "site", site["name_zh"], site["name_en"]
    else:
        level, zh, en = "root", "全部", "All"
    totals = table.totals.get(path, {})
    return {
        "path": path,
        "level": level,
        "name_zh": zh,
        "name_en": en,
        **{m: totals.get(m, 0) for m in ROLLUP_METRICS},
    }
