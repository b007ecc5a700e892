# mypy: allow-untyped-defs
"""Registry CSV import: every bad row reported by file and line, nothing half-imported."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from cloud_ingest.errors import ImportFailed
from cloud_ingest.i18n import ZH, Said
from cloud_ingest.registry.importer import import_csv
from cloud_ingest.registry.store import Registry
from tests.support.ingest import write_registry
from tests.support.paths import REPO
from warmcard.cards import canonical_uid
from warmcard.command.cli import app
from warmcard.contract import MealPeriod, Mode, Role


def _counts(location):
    reg = Registry(location)
    try:
        return {
            t: reg.query(f"SELECT COUNT(*) FROM {t}")[0][0]
            for t in ("sites", "devices", "people", "cards")
        }
    finally:
        reg.close()


def test_import_builds_config_and_roster(tmp_path, store_at):
    ids = write_registry(tmp_path, "r1", store_at("registry"))
    reg = Registry(store_at("registry"))
    try:
        assert reg.site_of(ids["canteen_a"]) == ids["site_a"]
        assert reg.site_of("nope") is None
        cfg = reg.device_config(ids["canteen_a"])
        assert cfg.mode is Mode.CANTEEN and cfg.debounce_s == 5
        assert [(m.period, m.start, m.end) for m in cfg.meals] == [
            (MealPeriod.BREAKFAST, "07:00", "09:00"),
            (MealPeriod.LUNCH, "11:00", "13:00"),
            (MealPeriod.DINNER, "17:00", "19:00"),
        ]
        assert reg.device_config(ids["gate_b"]).debounce_s == 10  # default
        roster_a = reg.roster(ids["site_a"])
        # Names go only to the person's own site; UIDs were canonicalised from 04:A1:B2:01.
        assert [e.person_id for e in roster_a.entries] == [f"P{i:04d}" for i in range(1, 7)]
        assert roster_a.entries[0].card_uid == "04A1B201"
        assert roster_a.entries[0].display_name == "长者1"
        assert len(reg.roster(ids["site_b"]).entries) == 4
    finally:
        reg.close()


def test_bad_rows_are_all_reported_and_nothing_is_imported(tmp_path, store_at):
    write_registry(tmp_path, "r2", store_at("registry"))
    before = _counts(store_at("registry"))
    (tmp_path / "sites2.csv").write_text(
        "site_id,name_zh,tz,opening,closing,lunch\n"
        "new-site,新站,Asia/Shanghai,07:00,18:00,11:00-13:00\n"
        "Bad Site,坏,Asia/Shanghai,07:00,18:00,\n"
        "other-site,,Mars/Base,7:00,25:00,13:00-11:00\n",
        encoding="utf-8",
    )
    (tmp_path / "devices2.csv").write_text(
        "device_id,site_id,mode\n"
        "new-kiosk,new-site,entrance\n"
        "kiosk-x,missing-site,lobby\n"
        "new-kiosk,new-site,canteen\n",
        encoding="utf-8",
    )
    (tmp_path / "cards2.csv").write_text(
        "card_uid,person_id,active\n04a1b2c3d4e5f6,P0001,1\nZZZZ,P0001,1\n04A1B2C3,ghost,maybe\n",
        encoding="utf-8",
    )
    reg = Registry(store_at("registry"))
    try:
        with pytest.raises(ImportFailed) as info:
            import_csv(
                reg,
                sites=tmp_path / "sites2.csv",
                devices=tmp_path / "devices2.csv",
                cards=tmp_path / "cards2.csv",
            )
    finally:
        reg.close()
    where = {(p[0].rsplit("/", 1)[-1], p[1]) for p in info.value.problems}
    assert where == {
        ("sites2.csv", 3),
        ("sites2.csv", 4),
        ("devices2.csv", 3),
        ("devices2.csv", 4),
        ("cards2.csv", 3),
        ("cards2.csv", 4),
    }
    text = str(info.value)
    for needle in (
        "Mars/Base",
        "opening '7:00'",
        "closing '25:00'",
        "name_zh is empty",
        "missing-site",
        "lobby",
        "already on line 2",
        "ZZZZ",
        "ghost",
        "active 'maybe'",
        "lunch window 13:00-11:00",
    ):
        assert needle in text, needle
    # The good rows (new-site, new-kiosk, the 7-byte card) were not imported either.
    assert _counts(store_at("registry")) == before


def test_reimport_upserts(tmp_path, store_at):
    ids = write_registry(tmp_path, "r3", store_at("registry"))
    (tmp_path / "devices.csv").write_text(
        f"device_id,site_id,mode\n{ids['gate_b']},{ids['site_a']},canteen\n", encoding="utf-8"
    )
    (tmp_path / "cards.csv").write_text(
        "card_uid,person_id,active\n04a1b201,P0001,0\n", encoding="utf-8"
    )
    reg = Registry(store_at("registry"))
    try:
        version = reg.version
        summary = import_csv(reg, devices=tmp_path / "devices.csv", cards=tmp_path / "cards.csv")
        assert summary.version == version + 1 and reg.version == summary.version
        assert reg.site_of(ids["gate_b"]) == ids["site_a"]
        assert "04A1B201" not in {e.card_uid for e in reg.roster(ids["site_a"]).entries}
    finally:
        reg.close()
    assert _counts(store_at("registry"))["devices"] == 3


def test_gbk_file_and_bad_header_are_explained(tmp_path):
    (tmp_path / "sites.csv").write_bytes("site_id,name_zh\nsite-1,喜洲\n".encode("gbk"))
    (tmp_path / "people.csv").write_text("person_id,name\nP1,x\n", encoding="utf-8")
    reg = Registry(tmp_path / "r.sqlite3")
    try:
        with pytest.raises(ImportFailed) as info:
            import_csv(reg, sites=tmp_path / "sites.csv", people=tmp_path / "people.csv")
    finally:
        reg.close()
    text = str(info.value)
    assert "sites.csv:2: not UTF-8" in text
    assert "people.csv:1: missing column(s): display_name, site_id" in text


def test_a_users_sheet_says_each_problem_in_both_languages(tmp_path):
    ids = write_registry(tmp_path, "r9")
    (tmp_path / "people.csv").write_text(
        "person_id,display_name,site_id,role\n"
        f"N1,甲,{ids['site_a']},\n"
        f"N2,乙,{ids['site_b']},\n"  # a site outside the user's areas
        f"P0007,丙,{ids['site_a']},\n"  # a person at such a site
        f"N3,,{ids['site_a']},boss\n"
        f"N1,丁,{ids['site_a']},\n",
        encoding="utf-8",
    )
    reg = Registry(tmp_path / "registry.sqlite3")
    try:
        with pytest.raises(ImportFailed) as info:
            import_csv(reg, people=tmp_path / "people.csv", editable={ids["site_a"]})
    finally:
        reg.close()
    problems = info.value.problems
    # The English, as `warmcard import` prints it, is the text itself; the zh-CN rides along.
    assert [(line, str(p)) for _, line, p in problems] == [
        (3, f"site {ids['site_b']} does not exist or is outside your areas"),
        (4, "person_id P0007 is taken by a person outside your areas"),
        (5, "display_name is empty"),
        (5, "role 'boss' must be elder or staff (default elder)"),
        (6, "person_id N1 already on line 2"),
    ]
    assert [p.says(ZH) for _, _, p in problems if isinstance(p, Said)] == [
        f"院 {ids['site_b']} 不存在或不在您的区域",
        "编号 P0007 已被其他院的长者使用",
        "姓名为空",
        "角色 'boss' 须为 elder 或 staff（默认 elder）",
        "编号 N1 与第 2 行重复",
    ]
    assert "长者7" not in str(info.value)  # a person outside the areas is never named
    assert [row[0] for row in info.value.people] == ["N1"]  # the row that passed


@pytest.mark.parametrize(
    ("raw", "uid"),
    [
        ("04:a1:b2:c3", "04A1B2C3"),
        ("04 A1 B2 C3 D4 E5 F6", "04A1B2C3D4E5F6"),
        ("04-a1-b2-c3-d4-e5-f6-07-08-09", "04A1B2C3D4E5F6070809"),
    ],
)
def test_canonical_uid(raw, uid):
    assert canonical_uid(raw) == uid


@pytest.mark.parametrize("raw", ["04A1B2", "04A1B2C3D4", "GGA1B2C3", ""])
def test_bad_uid(raw):
    with pytest.raises(ValueError):
        canonical_uid(raw)


def test_cli_import_reports_lines(tmp_path, store_at):
    write_registry(tmp_path, "r4", store_at("registry"))
    (tmp_path / "bad.csv").write_text(
        "device_id,site_id,mode\nk-1,nowhere,entrance\n", encoding="utf-8"
    )
    runner = CliRunner()
    result = runner.invoke(
        app,
        [
            "import",
            "--registry",
            str(store_at("registry")),
            "--devices",
            str(tmp_path / "bad.csv"),
        ],
    )
    assert result.exit_code == 1
    assert "bad.csv:2: site_id 'nowhere'" in result.output
    ok = runner.invoke(
        app,
        [
            "import",
            "--registry",
            str(store_at("registry")),
            "--sites",
            str(tmp_path / "sites.csv"),
        ],
    )
    assert ok.exit_code == 0, ok.output
    assert "已导入 Imported: sites 2" in ok.output


def test_documented_example_imports(tmp_path, store_at):
    """docs/registry-csv.md's example files are valid as written."""
    import re

    doc = (REPO / "docs" / "registry-csv.md").read_text(encoding="utf-8")
    files = dict(re.findall(r"`(\w+)\.csv`\n```csv\n(.*?)```", doc, re.S))
    assert set(files) == {"sites", "devices", "people", "cards"}
    for name, text in files.items():
        (tmp_path / f"{name}.csv").write_text(text, encoding="utf-8")
    reg = Registry(store_at("registry"))
    try:
        summary = import_csv(reg, **{k: tmp_path / f"{k}.csv" for k in files})
        assert summary.counts == {"sites": 2, "devices": 3, "people": 3, "cards": 3}
        assert [e.card_uid for e in reg.roster("dali-xizhou-01").entries] == [
            "04A1B2C3",
            "04A1B2C3D4E5F6",
        ]
        assert reg.roster("dali-zhoucheng-01").entries == []  # its one card is inactive
    finally:
        reg.close()


def test_ingest_refuses_a_status_link_under_the_consumers_username(tmp_path: Path) -> None:
    """Under use_username_as_clientid a second connection as the same user takes the session."""
    from cloud_ingest.settings import IngestSettings
    from warmcard.settings import SettingsError

    config = tmp_path / "ingest.toml"
    group = 'share_group = "ingest-5f0c1e9a77d2b4c3a1e8d6f0"\n'  # as `provision --ca-init` makes
    config.write_text(group + '[mqtt]\nusername = "ingest-1"\npassword = "s3cret-ingest-pw"\n')
    with pytest.raises(SettingsError, match="link_mqtt"):
        IngestSettings.load(config)
    config.write_text(
        config.read_text() + '[link_mqtt]\nusername = "ingest-1"\npassword = "s3cret-ingest-pw"\n'
    )
    with pytest.raises(SettingsError, match="link_mqtt"):
        IngestSettings.load(config)
    config.write_text(
        group + '[mqtt]\nusername = "ingest-1"\npassword = "s3cret-ingest-pw"\n'
        '[link_mqtt]\nusername = "downlink"\npassword = "s3cret-downlink-pw"\n'
    )
    settings = IngestSettings.load(config)
    assert settings.link.username == "downlink"


def test_staff_role_reaches_the_roster_and_site_name_the_config(tmp_path, store_at):
    ids = write_registry(tmp_path, "r5", store_at("registry"))
    reg = Registry(store_at("registry"))
    try:
        before = reg.roster(ids["site_a"])
        assert {e.role for e in before.entries} == {Role.ELDER}
        assert b"role" not in before.to_bytes()  # elders' lines as before the column
        (tmp_path / "staff.csv").write_text(
            f"person_id,display_name,site_id,role\nS0001,食堂王师傅,{ids['site_a']},staff\n"
            f"P0001,长者1,{ids['site_a']},\n",
            encoding="utf-8",
        )
        (tmp_path / "staffcards.csv").write_text("card_uid,person_id\n04FFEE01,S0001\n")
        import_csv(reg, people=tmp_path / "staff.csv", cards=tmp_path / "staffcards.csv")
        after = reg.roster(ids["site_a"])
        staff = [e for e in after.entries if e.role is Role.STAFF]
        assert [(e.card_uid, e.person_id) for e in staff] == [("04FFEE01", "S0001")]
        assert after.version != before.version
        assert after.to_bytes().count(b'"role":"staff"') == 1
        assert reg.device_config(ids["canteen_a"]).site_name == "喜洲幸福小院"
        (tmp_path / "bad.csv").write_text(
            f"person_id,display_name,site_id,role\nS0002,李,{ids['site_a']},boss\n"
        )
        with pytest.raises(ImportFailed, match="role 'boss' must be elder or staff"):
            import_csv(reg, people=tmp_path / "bad.csv")
    finally:
        reg.close()
