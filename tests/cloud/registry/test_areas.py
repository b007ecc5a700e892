"""Area hierarchy: paths, segment-wise containment, roll-ups and the all-or-nothing CSV import
(the store's tests on SQLite and PostgreSQL, `store_at`)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
import typer
from sqlalchemy import Connection
from typer.testing import CliRunner

from cloud_ingest.cli import console as console_cli
from cloud_ingest.console import db as console_db
from cloud_ingest.errors import AreaError, AreaImportError
from cloud_ingest.registry import areas
from cloud_ingest.registry.areas import Level
from tests.support.databases import StoreAt
from warmcard.command.servers.postgres import PostgreSQL

GOOD_CSV = """path,name_zh,name_en
dali,大理州,Dali
dali/eryuan,洱源县,Eryuan
dali/eryuan/xishan,西山乡,Xishan
dali/eryuan/xishan/xs-yard-01,西山幸福小院,Xishan Happiness Courtyard
dali/er,洱海片区,Erhai
dali/er/haidong,海东镇,Haidong
dali/er/haidong/hd-yard-01,海东幸福小院,Haidong Courtyard
"""


@pytest.fixture
def conn(store_at: StoreAt) -> Iterator[Connection]:
    """One write transaction of the console store for the whole test (an import refused
    raises before it writes, so the transaction goes on)."""
    console = console_db.open_store(store_at("console"))
    with console.write() as c:
        yield c
    console.close()


def write(tmp_path: Path, text: str, name: str = "areas.csv", encoding: str = "utf-8") -> Path:
    f = tmp_path / name
    f.write_bytes(text.encode(encoding))
    return f


def test_parse_path_normalises_and_rejects() -> None:
    assert areas.parse_path(" /dali/eryuan/ ") == "dali/eryuan"
    assert areas.parse_path("/") == areas.ROOT
    assert areas.parse_path("") == areas.ROOT
    for bad in ("Dali", "dali//eryuan", "dali/洱源", "a/b", "dali/er yuan", "a1/b1/c1/d1/e1"):
        with pytest.raises(AreaError):
            areas.parse_path(bad)


def test_is_under_compares_whole_segments_not_strings() -> None:
    assert areas.is_under("dali/eryuan/xishan", "dali/eryuan")
    assert areas.is_under("dali/eryuan", "dali/eryuan")
    assert areas.is_under("dali/eryuan", areas.ROOT)
    # The prefix trap: 'dali/er' is a string prefix of 'dali/eryuan' but not an ancestor.
    assert not areas.is_under("dali/eryuan", "dali/er")
    assert not areas.is_under("dali/eryuan/xishan", "dali/er")
    assert not areas.is_under("dali", "dali/eryuan")
    assert not areas.is_under(areas.ROOT, "dali")


def test_ancestors_parent_and_level() -> None:
    assert areas.ancestors("dali/eryuan/xishan") == [
        "",
        "dali",
        "dali/eryuan",
        "dali/eryuan/xishan",
    ]
    assert areas.ancestors("dali/eryuan", include_self=False) == ["", "dali"]
    assert areas.parent_of("dali/eryuan") == "dali"
    assert areas.parent_of("dali") == ""
    assert areas.parent_of("") is None
    assert areas.level_of("dali") is Level.PREFECTURE
    assert areas.level_of("dali/eryuan/xishan/xs-yard-01") is Level.SITE
    with pytest.raises(AreaError):
        areas.level_of("")


def test_roll_up_sums_every_level_and_keeps_unplaced_sites_apart() -> None:
    paths = {
        "xs-01": "dali/eryuan/xishan/xs-01",
        "xs-02": "dali/eryuan/xishan/xs-02",
        "nm-01": "dali/eryuan/niujie/nm-01",
        "hd-01": "dali/er/haidong/hd-01",
    }
    per_site = {"xs-01": 12, "xs-02": 30, "nm-01": 7, "hd-01": 100, "ghost": 5}
    result = areas.roll_up(per_site, paths, areas=["dali/eryuan/empty-town"])
    assert result.at("dali/eryuan/xishan") == 42
    assert result.at("dali/eryuan") == 49
    assert result.at("dali/er") == 100  # not mixed into dali/eryuan, nor the other way round
    assert result.at("dali") == 149
    assert result.at("") == 149
    assert result.at("dali/eryuan/xishan/xs-02") == 30
    assert result.totals["dali/eryuan/empty-town"] == 0
    assert result.unplaced == {"ghost": 5}


def test_roll_up_of_floats() -> None:
    result = areas.roll_up({"a1": 0.5, "a2": 0.25}, {"a1": "p1/c1/t1/a1", "a2": "p1/c1/t1/a2"})
    assert result.at("p1/c1") == pytest.approx(0.75)


def test_import_then_query(conn: Connection, tmp_path: Path) -> None:
    result = areas.import_areas_csv(conn, write(tmp_path, GOOD_CSV))
    assert (result.added, result.updated) == (7, 0)
    eryuan = areas.get_area(conn, "dali/eryuan")
    assert eryuan == areas.Area("dali/eryuan", "dali", Level.COUNTY, "洱源县", "Eryuan")
    assert eryuan.bilingual() == "洱源县 Eryuan"
    assert [a.path for a in areas.children(conn, "dali")] == ["dali/er", "dali/eryuan"]
    assert areas.site_path(conn, "xs-yard-01") == "dali/eryuan/xishan/xs-yard-01"
    assert areas.site_path(conn, "nope") is None
    # SQL containment has the same segment rule as is_under.
    under_er = [a.path for a in areas.areas_under(conn, "dali/er")]
    assert under_er == ["dali/er", "dali/er/haidong", "dali/er/haidong/hd-yard-01"]
    sites = areas.areas_under(conn, "dali/eryuan", Level.SITE)
    assert [a.site_id for a in sites] == ["xs-yard-01"]
    assert len(areas.areas_under(conn, areas.ROOT)) == 7


def test_import_accepts_parents_later_bom_and_renames(conn: Connection, tmp_path: Path) -> None:
    text = "path,name_zh,name_en\ndali/eryuan,洱源,Eryuan\ndali,大理,Dali\n\n"
    result = areas.import_areas_csv(conn, write(tmp_path, text, encoding="utf-8-sig"))
    assert (result.added, result.updated) == (2, 0)
    again = "path,name_zh,name_en\ndali/eryuan,洱源县,Eryuan County\n"
    result = areas.import_areas_csv(conn, write(tmp_path, again, "b.csv"))
    assert (result.added, result.updated) == (0, 1)
    area = areas.get_area(conn, "dali/eryuan")
    assert area is not None and area.name_zh == "洱源县"
    assert area.name("en") == "Eryuan County"


def test_import_reports_every_bad_row_and_writes_nothing(conn: Connection, tmp_path: Path) -> None:
    text = (
        "path,name_zh,name_en\n"
        "dali,大理州,Dali\n"  # 2 fine
        "dali/Eryuan,洱源县,Eryuan\n"  # 3 upper case
        "dali/binchuan,,Binchuan\n"  # 4 empty name
        "dali,大理,Dali again\n"  # 5 duplicate
        "dali/nowhere/town,镇,Town\n"  # 6 parent missing
        "dali/x1,x,x,extra\n"  # 7 four columns
        "/,根,Root\n"  # 8 root
        "a1/b1/c1/d1/e1,深,Deep\n"  # 9 too deep
    )
    f = write(tmp_path, text)
    with pytest.raises(AreaImportError) as info:
        areas.import_areas_csv(conn, f)
    lines = sorted(int(p.split(":")[1]) for p in info.value.problems)
    assert lines == [3, 4, 5, 6, 7, 8, 9]
    assert all(p.startswith(f"{f}:") for p in info.value.problems)
    assert "dali/nowhere" in str(info.value)
    assert conn.execute(sa.text("SELECT count(*) FROM areas")).scalar_one() == 0


def test_import_refuses_a_site_in_two_places(conn: Connection, tmp_path: Path) -> None:
    areas.import_areas_csv(conn, write(tmp_path, GOOD_CSV))
    moved = "path,name_zh,name_en\ndali/er/haidong/xs-yard-01,西山,Xishan\n"
    with pytest.raises(AreaImportError, match="already at 'dali/eryuan/xishan/xs-yard-01'"):
        areas.import_areas_csv(conn, write(tmp_path, moved, "m.csv"))
    twice = (
        "path,name_zh,name_en\ndali/er/haidong/new-01,新,New\ndali/eryuan/xishan/new-01,新,New\n"
    )
    with pytest.raises(AreaImportError, match=r"m2.csv:3: .*'new-01'"):
        areas.import_areas_csv(conn, write(tmp_path, twice, "m2.csv"))
    assert areas.site_path(conn, "new-01") is None


def test_import_bad_header_and_encoding(conn: Connection, tmp_path: Path) -> None:
    with pytest.raises(AreaImportError, match=r"h.csv:1: .*header"):
        areas.import_areas_csv(conn, write(tmp_path, "code,name\ndali,大理\n", "h.csv"))
    gbk = write(tmp_path, "path,name_zh,name_en\ndali,大理州,Dali\n", "gbk.csv", encoding="gbk")
    with pytest.raises(AreaImportError, match=r"gbk.csv:2: .*UTF-8"):
        areas.import_areas_csv(conn, gbk)
    with pytest.raises(AreaImportError, match="cannot read"):
        areas.import_areas_csv(conn, tmp_path / "missing.csv")


def test_containment_and_order_do_not_depend_on_the_collation(
    postgres: PostgreSQL, tmp_path: Path
) -> None:
    """A PostgreSQL database made with a language's collation that ignores punctuation at first
    (as glibc's en_US.UTF-8 does; here ICU's, which needs no OS locale) finds and orders areas
    as SQLite does. The range query this replaced found only 'dali/er' there."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    postgres.psql(
        "postgres",
        f'CREATE DATABASE "{name}" TEMPLATE template0 LOCALE_PROVIDER icu'
        " ICU_LOCALE 'en-US-u-ka-shifted' LOCALE 'C.UTF-8'",
    )
    console = console_db.open_store(postgres.url.rsplit("/", 1)[0] + f"/{name}")
    try:
        text = GOOD_CSV + "dali/er-bei,洱北,Erbei\ndali/er/a-b,甲乙,Ab\ndali/er/ab,甲,A\n"
        with console.write() as conn:
            areas.import_areas_csv(conn, write(tmp_path, text))
            under_er = [a.path for a in areas.areas_under(conn, "dali/er")]
            kids = [a.path for a in areas.children(conn, "dali")]
    finally:
        console.close()
        postgres.psql("postgres", f'DROP DATABASE "{name}" WITH (FORCE)')
    assert under_er == [
        "dali/er",
        "dali/er/a-b",
        "dali/er/ab",
        "dali/er/haidong",
        "dali/er/haidong/hd-yard-01",
    ]
    assert kids == ["dali/er", "dali/er-bei", "dali/eryuan"]


def test_the_area_commands_take_the_store_as_a_path_or_a_url(
    store_at: StoreAt, tmp_path: Path
) -> None:
    app = typer.Typer()
    console_cli.register(app)
    where = str(store_at("console"))
    runner = CliRunner()
    bad = runner.invoke(
        app, ["area", "import", str(write(tmp_path, "code\n", "bad.csv")), "--db", where]
    )
    assert bad.exit_code == 1 and "bad.csv:1:" in bad.output
    done = runner.invoke(app, ["area", "import", str(write(tmp_path, GOOD_CSV)), "--db", where])
    assert done.exit_code == 0 and "7 added" in done.output
    listed = runner.invoke(app, ["area", "list", "--under", "dali/er", "--db", where])
    assert listed.exit_code == 0
    assert [line.split()[0] for line in listed.output.splitlines()] == [
        "dali/er",
        "dali/er/haidong",
        "dali/er/haidong/hd-yard-01",
    ]
