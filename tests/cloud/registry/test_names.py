# mypy: allow-untyped-defs
"""Names of sites, areas and people are one line of visible text: a NUL, an escape sequence, a
bidi override or a zero-width character is refused at import, with its file and line."""

from __future__ import annotations

from pathlib import Path

import pytest

from cloud_ingest.console import db as console_db
from cloud_ingest.errors import AreaImportError, ImportFailed
from cloud_ingest.registry import areas
from cloud_ingest.registry.importer import import_csv
from cloud_ingest.registry.store import Registry
from tests.support.databases import StoreAt

BAD = {
    "NUL": "喜洲\x00小院",
    "escape": "\x1b[2J喜洲小院",
    "DEL": "喜洲小院\x7f",
    "C1": "喜洲\x85小院",
    "bidi override": "\u202e院小洲喜",
    "zero width": "喜洲\u200b小院",
    "line separator": "喜洲\u2028小院",
}


def test_site_names_with_control_characters_are_refused(tmp_path: Path, store_at: StoreAt) -> None:
    rows = [f"s-{i:02d},{name},Courtyard {i}" for i, name in enumerate(BAD.values())]
    rows.append("s-en,周城小院,Zhoucheng\x07")  # name_en too
    rows.append("s-ok,周城幸福小院,Zhoucheng 𠀋 courtyard")  # a rare character is fine
    sites = tmp_path / "sites.csv"
    sites.write_text("site_id,name_zh,name_en\n" + "\n".join(rows) + "\n", encoding="utf-8")
    registry = Registry(store_at("registry"))
    try:
        with pytest.raises(ImportFailed) as info:
            import_csv(registry, sites=sites)
        assert [line for _, line, _ in info.value.problems] == list(range(2, len(BAD) + 3))
        assert all("control or invisible character" in p for _, _, p in info.value.problems)
        assert registry.sites() == []  # nothing half-imported
    finally:
        registry.close()


def test_area_and_person_names_with_control_characters_are_refused(tmp_path: Path) -> None:
    csv = tmp_path / "areas.csv"
    csv.write_text(
        "path,name_zh,name_en\ndali,大理州,Dali\ndali/xizhou,喜洲镇\x00,Xizhou\n", encoding="utf-8"
    )
    console = console_db.open_store(tmp_path / "console.sqlite3")
    try:
        with (
            pytest.raises(AreaImportError, match=r"areas.csv:3: .*U\+0000"),
            console.write() as conn,
        ):
            areas.import_areas_csv(conn, csv)
    finally:
        console.close()
    people = tmp_path / "people.csv"
    sites = tmp_path / "sites.csv"
    sites.write_text("site_id,name_zh\ns-01,喜洲小院\n", encoding="utf-8")
    people.write_text("person_id,display_name,site_id\nP0001,长者\u202e一,s-01\n", encoding="utf-8")
    registry = Registry(tmp_path / "registry.sqlite3")
    try:
        with pytest.raises(ImportFailed, match=r"people.csv:2: display_name holds"):
            import_csv(registry, sites=sites, people=people)
    finally:
        registry.close()
