"""The area hierarchy for Grafana: one `site_areas` point per placed site, tagged county,
township and site, so the dashboard's variables can narrow county → township → site with
`SHOW TAG VALUES` (deploy/grafana/warmcard.json, docs/operations.md).

The tap points carry only the site; Grafana derives the area in its queries (`"site" =~
/^$site$/`, the sites of the chosen county or township), from this mapping. The areas table in the
console database stays the one source of truth: a site moved to another township, or a township
re-coded, counts under its new place for every day, past ones too, exactly as the console's
reports count it. `publish_areas` replaces the whole mapping; run it after each area import
(`warmcard grafana areas`).
"""

from __future__ import annotations

from cloud_ingest.db import Database
from cloud_ingest.pipeline.influx import Storage, quote_ident
from cloud_ingest.pipeline.lineprotocol import encode_point
from cloud_ingest.registry import areas
from cloud_ingest.registry.placement import load_hierarchy

SITE_AREAS = "site_areas"


def area_points(site_paths: dict[str, str], at_us: int) -> list[str]:
    """One point per site placed at the site level (prefecture/county/township/site)."""
    lines = []
    for site_id, path in sorted(site_paths.items()):
        parts = areas.segments(path)
        if len(parts) != areas.MAX_DEPTH:
            continue  # not under a township: nothing to narrow it by
        tags = {"county": "/".join(parts[:2]), "township": "/".join(parts[:3]), "site": site_id}
        lines.append(encode_point(SITE_AREAS, tags, {"placed": True}, at_us))
    return lines


def publish_areas(console: Database, storage: Storage, at_us: int) -> int:
    """Replace the `site_areas` mapping with the console store's placements; returns sites."""
    with console.read() as conn:  # read first: no transaction stays open while InfluxDB works
        lines = area_points(load_hierarchy(conn).site_paths, at_us)
    storage.ensure_database()
    # Series of a site's old place would stay in SHOW TAG VALUES: drop them all, then write.
    storage.query(f"DROP SERIES FROM {quote_ident(SITE_AREAS)}")
    storage.write(lines)
    return len(lines)
