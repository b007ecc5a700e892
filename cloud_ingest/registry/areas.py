"""The area hierarchy prefecture → county → township → site, as paths of slug codes.

An area is named by its path, e.g. ``dali``, ``dali/eryuan``, ``dali/eryuan/xishan``; a
site (courtyard or community) is the leaf ``dali/eryuan/xishan/<site_id>``. The empty path
is the root: everything. Containment is decided on whole segments, never on string prefixes,
so ``dali/er`` does not contain ``dali/eryuan``.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, text

from cloud_ingest.errors import AreaError, AreaImportError
from cloud_ingest.registry.names import name_problem
from warmcard.ids import SITE_ID_RE

ROOT = ""
SEGMENT_RE = SITE_ID_RE  # lower-case slug: the same alphabet as site and device ids
MAX_NAME = 100


class Level(StrEnum):
    """How deep an area sits; the value is what the `areas.level` column stores."""

    PREFECTURE = "prefecture"
    COUNTY = "county"
    TOWNSHIP = "township"
    SITE = "site"


LEVELS: tuple[Level, ...] = (Level.PREFECTURE, Level.COUNTY, Level.TOWNSHIP, Level.SITE)
MAX_DEPTH = len(LEVELS)


def parse_path(text: str) -> str:
    """Normalise an area path (``/`` or empty is the root); raise AreaError if malformed."""
    stripped = text.strip().strip("/")
    if not stripped:
        return ROOT
    parts = stripped.split("/")
    if len(parts) > MAX_DEPTH:
        raise AreaError(
            f"区域路径层级过多 area path {text!r} has {len(parts)} levels; at most {MAX_DEPTH}"
        )
    for part in parts:
        if not SEGMENT_RE.fullmatch(part):
            raise AreaError(
                f"区域路径无效 area path {text!r}: segment {part!r} must be 2-63 characters "
                "of a-z, 0-9 and '-', starting with a letter or digit"
            )
    return "/".join(parts)


def segments(path: str) -> tuple[str, ...]:
    """The slug codes of a path; the root has none."""
    return tuple(path.split("/")) if path else ()


def is_under(path: str, area: str) -> bool:
    """True if `path` is `area` itself or lies inside it, compared segment by segment."""
    inner, outer = segments(path), segments(area)
    return inner[: len(outer)] == outer


def parent_of(path: str) -> str | None:
    """The enclosing area's path; None for the root."""
    if path == ROOT:
        return None
    return path.rpartition("/")[0]


def ancestors(path: str, include_self: bool = True) -> list[str]:
    """Every enclosing path from the root down, e.g. ['', 'dali', 'dali/eryuan']."""
    parts = segments(path)
    stop = len(parts) + (1 if include_self else 0)
    return ["/".join(parts[:depth]) for depth in range(stop)]


def level_of(path: str) -> Level:
    """The level a (non-root) path's depth puts it at."""
    depth = len(segments(path))
    if not 1 <= depth <= MAX_DEPTH:
        raise AreaError(f"the root has no level; {path!r} must have 1-{MAX_DEPTH} segments")
    return LEVELS[depth - 1]


@dataclass(frozen=True)
class Area:
    """One row of the areas table."""

    path: str
    parent: str
    level: Level
    name_zh: str
    name_en: str

    @property
    def site_id(self) -> str | None:
        return segments(self.path)[-1] if self.level is Level.SITE else None

    def name(self, lang: str = "zh-CN") -> str:
        return self.name_en if lang.startswith("en") else self.name_zh

    def bilingual(self) -> str:
        """'洱源县 Eryuan', the form pages show."""
        return f"{self.name_zh} {self.name_en}" if self.name_en != self.name_zh else self.name_zh


def _row_to_area(row: Sequence[Any]) -> Area:
    return Area(row[0], row[1], Level(row[2]), row[3], row[4])


_COLUMNS = "path, parent, level, name_zh, name_en"


def get_area(conn: Connection, path: str) -> Area | None:
    """The area at exactly this path, or None."""
    row = conn.execute(
        text(f"SELECT {_COLUMNS} FROM areas WHERE path = :path"), {"path": path}
    ).first()
    return _row_to_area(row) if row else None


def _by_path(rows: Iterable[Sequence[Any]]) -> list[Area]:
    # Sorted here, by code point, not by ORDER BY: a PostgreSQL database's collation (en_US,
    # zh_CN) orders '/' and '-' unlike SQLite, and pages and tests rely on one order.
    return sorted((_row_to_area(r) for r in rows), key=lambda a: a.path)


def children(conn: Connection, path: str) -> list[Area]:
    """The areas directly inside `path`, by path."""
    return _by_path(
        conn.execute(text(f"SELECT {_COLUMNS} FROM areas WHERE parent = :path"), {"path": path})
    )


def areas_under(conn: Connection, area: str, level: Level | None = None) -> list[Area]:
    """`area` and every area inside it, optionally only one level, by path."""
    # Whole segments: `area/%` (slugs hold no '%' or '_'); a range on the path would depend on
    # the database's collation.
    where = "" if area == ROOT else " AND (path = :area OR path LIKE :below)"
    if level is not None:
        where += " AND level = :level"
    params = {"area": area, "below": area + "/%", "level": level.value if level else ""}
    return _by_path(conn.execute(text(f"SELECT {_COLUMNS} FROM areas WHERE 1 = 1{where}"), params))


def site_path(conn: Connection, site_id: str) -> str | None:
    """Where a site sits, or None if the areas table does not place it."""
    found: str | None = conn.execute(
        text("SELECT path FROM areas WHERE site_id = :site"), {"site": site_id}
    ).scalar()
    return found


def site_paths(conn: Connection) -> dict[str, str]:
    """Every placed site: site_id -> path."""
    rows = conn.execute(text("SELECT site_id, path FROM areas WHERE site_id IS NOT NULL"))
    return {site: path for site, path in rows}


def place_of(site_id: str | None, site_paths: Mapping[str, str]) -> str:
    """Where a site sits: its leaf path, or the root for a site the hierarchy does not place."""
    return site_paths.get(site_id, ROOT) if site_id else ROOT


def sites_in(area: str, site_ids: Iterable[str], site_paths: Mapping[str, str]) -> list[str]:
    """The sites among `site_ids` that lie in `area` (segment-wise), by id.

    An unplaced site lies at the root, so only the root contains it. Every "which sites are in
    this area" (reports, the console overview and its streams, `warmcard report`) asks here.
    """
    return sorted(s for s in site_ids if is_under(place_of(s, site_paths), area))


Number = int | float


@dataclass
class RollUp:
    """Sums per area path (root '' included); sites the hierarchy does not place are kept apart."""

    totals: dict[str, Number] = field(default_factory=dict)
    unplaced: dict[str, Number] = field(default_factory=dict)

    def at(self, path: str) -> Number:
        return self.totals.get(path, 0)


def roll_up(
    per_site: Mapping[str, Number],
    site_paths: Mapping[str, str],
    areas: Iterable[str] = (),
) -> RollUp:
    """Add each site's number into the site and every area above it, up to the root.

    `areas` lists paths that should appear with 0 when no site under them has a number,
    so a township with no taps today is shown as 0, not left out.
    """
    result = RollUp(totals=dict.fromkeys(areas, 0))
    for site_id, value in per_site.items():
        path = site_paths.get(site_id)
        if path is None:
            result.unplaced[site_id] = value
            continue
        for p in ancestors(path):
            result.totals[p] = result.totals.get(p, 0) + value
    return result


@dataclass(frozen=True)
class ImportResult:
    added: int
    updated: int


CSV_HEADER = ("path", "name_zh", "name_en")


def _decode(raw: bytes, name: str) -> str:
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise AreaImportError(
            [f"{name}:{line}: 不是 UTF-8 编码 not UTF-8; save the sheet as 'CSV UTF-8'"]
        ) from None


def import_areas_csv(conn: Connection, file: Path) -> ImportResult:
    """Add or rename areas from a CSV with columns path,name_zh,name_en; all rows or none.

    `conn` is a write transaction (`Database.write()`). Parents may come later in the same file
    or already be in the table. Every bad row is reported as ``file:line: problem`` in one
    AreaImportError, and nothing is written.
    """
    name = str(file)
    try:
        raw = file.read_bytes()
    except OSError as exc:
        raise AreaImportError([f"{name}:0: 无法读取 cannot read: {exc.strerror}"]) from None
    reader = csv.reader(io.StringIO(_decode(raw, name), newline=""))
    problems: list[str] = []
    header = next(reader, None)
    if header is None or tuple(h.strip() for h in header) != CSV_HEADER:
        raise AreaImportError(
            [f"{name}:1: 表头应为 header must be exactly: {','.join(CSV_HEADER)} (got {header})"]
        )

    rows: dict[str, tuple[int, Area]] = {}
    for record in reader:
        line = reader.line_num
        if not any(cell.strip() for cell in record):
            continue  # blank lines, e.g. at the end of a file saved by a spreadsheet
        if len(record) != len(CSV_HEADER):
            problems.append(f"{name}:{line}: expected {len(CSV_HEADER)} columns, got {len(record)}")
            continue
        raw_path, name_zh, name_en = (cell.strip() for cell in record)
        try:
            path = parse_path(raw_path)
            if path == ROOT:
                raise AreaError("empty path; the root is implicit and cannot be imported")
        except AreaError as exc:
            problems.append(f"{name}:{line}: {exc}")
            continue
        if path in rows:
            problems.append(f"{name}:{line}: 路径重复 {path!r} already on line {rows[path][0]}")
            continue
        bad_name = [
            f"{col} {problem}"
            for col, v in (("name_zh", name_zh), ("name_en", name_en))
            if (problem := name_problem(v, MAX_NAME))
        ]
        if bad_name:
            problems.append(f"{name}:{line}: {path}: 名称无效 " + ", ".join(bad_name))
            continue
        parent = parent_of(path) or ROOT
        rows[path] = (line, Area(path, parent, level_of(path), name_zh, name_en))

    existing = set(conn.execute(text("SELECT path FROM areas")).scalars())
    placed = site_paths(conn)
    in_file: dict[str, str] = {}
    for path, (line, area) in rows.items():
        if area.parent != ROOT and area.parent not in rows and area.parent not in existing:
            problems.append(
                f"{name}:{line}: 上级区域不存在 parent {area.parent!r} of {path!r} "
                "is neither in this file nor already imported"
            )
        site = area.site_id
        if site is not None and placed.get(site, path) != path:
            problems.append(
                f"{name}:{line}: 站点已在别处 site {site!r} is already at {placed[site]!r}; "
                "a site has one place"
            )
        elif site is not None and site in in_file:
            problems.append(
                f"{name}:{line}: 站点重复 site {site!r} is also at {in_file[site]!r}; "
                "a site has one place"
            )
        if site is not None:
            in_file.setdefault(site, path)
    if problems:
        raise AreaImportError(problems)

    added = updated = 0
    # Parents first so a reader never sees an orphan mid-import (sorted: shorter first); the
    # caller's write transaction makes it all rows or none.
    for path in sorted(rows, key=lambda p: (len(segments(p)), p)):
        area = rows[path][1]
        if path in existing:
            conn.execute(
                text("UPDATE areas SET name_zh = :zh, name_en = :en WHERE path = :path"),
                {"zh": area.name_zh, "en": area.name_en, "path": path},
            )
            updated += 1
        else:
            conn.execute(
                text(
                    "INSERT INTO areas (path, parent, level, name_zh, name_en, site_id)"
                    " VALUES (:path, :parent, :level, :zh, :en, :site)"
                ),
                {
                    "path": path,
                    "parent": area.parent,
                    "level": area.level.value,
                    "zh": area.name_zh,
                    "en": area.name_en,
                    "site": area.site_id,
                },
            )
            added += 1
    return ImportResult(added=added, updated=updated)
