"""Well-being: flags import, visit due after N days per flag and area, visits close and count."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cloud_ingest.alerts.engine import AlertEngine
from cloud_ingest.alerts.models import Alert, Kind, State
from cloud_ingest.alerts.wellbeing import read_flags_csv
from cloud_ingest.errors import AlertError, FlagImportError
from tests.support.alerts import DAY, UsClock, ev, local_us, make_engine
from tests.support.ingest import write_registry
from warmcard.command.cli import app as warmcard_app
from warmcard.contract import Kind as Tap

T0 = local_us(2024, 5, 6, 10)


Setup = tuple[AlertEngine, UsClock, dict[str, str]]


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[tuple[AlertEngine, UsClock, dict[str, str]]]:
    ids = write_registry(tmp_path, "wb")
    clock = UsClock(T0)
    engine, _, registry = make_engine(
        tmp_path, ids, clock,
        visit_due_days={"lives_alone": 2, "child_in_difficulty": 5},
        # Eryuan county wants elders living alone seen daily.
        visit_due_days_by_area={"dali/eryuan": {"lives_alone": 1}},
    )  # fmt: skip
    yield engine, clock, ids
    engine.store.close()
    registry.close()


def due(engine: AlertEngine) -> dict[str, Alert]:
    return {
        a.subject: a
        for a in engine.store.find([""], kinds=[Kind.VISIT_DUE])
        if a.state is not State.CLOSED
    }


def test_visit_due_after_n_days_with_area_override(setup: Setup) -> None:
    engine, clock, ids = setup
    # P0001 lives in site A (Eryuan: 1 day); P0007 in site B (default: 2 days).
    engine.store.set_flags([("P0001", "lives_alone", True), ("P0007", "lives_alone", True)], T0)
    engine.on_stored([(ids["site_b"], ev(ids["gate_b"], 1, T0, Tap.CHECK_IN, "P0007"))])
    clock.advance(0.9 * DAY / 1e6)
    engine.tick()
    assert due(engine) == {}
    clock.t = T0 + int(1.1 * DAY)
    engine.tick()
    assert set(due(engine)) == {"P0001"}
    alert = due(engine)["P0001"]
    assert alert.area_path == f"dali/eryuan/xishan/{ids['site_a']}"
    assert "独居" in alert.detail_zh and "无刷卡记录" in alert.detail_zh
    clock.t = T0 + int(2.1 * DAY)
    engine.tick()
    assert set(due(engine)) == {"P0001", "P0007"}
    detail = due(engine)["P0007"]
    assert "最后于 2024-05-06 10:00" in detail.detail_zh and ids["site_b"] in detail.detail_en


def test_most_specific_area_wins(tmp_path: Path) -> None:
    ids = write_registry(tmp_path, "ws")
    clock = UsClock(T0)
    engine, _, registry = make_engine(
        tmp_path, ids, clock,
        visit_due_days_by_area={
            "dali/eryuan": {"lives_alone": 1},
            "dali/eryuan/xishan": {"lives_alone": 3},
        },
    )  # fmt: skip
    try:
        engine.store.set_flags([("P0002", "lives_alone", True)], T0)
        clock.t = T0 + int(2.5 * DAY)
        engine.tick()
        assert due(engine) == {}  # 3 days in Xishan, not Eryuan's 1 nor the default 2
        clock.t = T0 + int(3.1 * DAY)
        engine.tick()
        assert set(due(engine)) == {"P0002"}
    finally:
        engine.store.close()
        registry.close()


def test_seen_again_clears_by_itself(setup: Setup) -> None:
    engine, clock, ids = setup
    engine.store.set_flags([("P0008", "lives_alone", True)], T0)
    clock.t = T0 + 3 * DAY
    engine.tick()
    assert "P0008" in due(engine)
    engine.on_stored([(ids["site_b"], ev(ids["gate_b"], 9, clock.t, Tap.CHECK_IN, "P0008"))])
    engine.tick()
    [closed] = [a for a in engine.store.find([""], kinds=[Kind.VISIT_DUE])]
    assert closed.state is State.CLOSED and closed.cleared_by == "auto"
    # An auto check-out (the kiosk's own at closing time) does not count as seen.
    clock.t += 3 * DAY
    engine.on_stored([(ids["site_b"], ev(ids["gate_b"], 10, clock.t, Tap.CHECK_OUT, "P0008"))])
    engine.tick()
    assert "P0008" in due(engine)


def test_recorded_visit_closes_restarts_the_count_and_is_counted(setup: Setup) -> None:
    engine, clock, _ = setup
    engine.store.set_flags([("P0009", "child_in_difficulty", True)], T0)
    clock.t = T0 + 5 * DAY + 1
    engine.tick()
    alert = due(engine)["P0009"]
    area = alert.area_path
    engine.store.record_visit("P0009", area, clock.t, "watcher-1", "在家，身体好", alert.id)
    closed = engine.store.get(alert.id)
    assert closed is not None and closed.cleared_by == "user" and closed.closed_by == "watcher-1"
    engine.tick()
    assert due(engine) == {}  # the visit restarts the five days
    clock.t += 5 * DAY + 1
    engine.tick()
    assert due(engine)["P0009"].id != alert.id
    assert len(engine.store.visits_in("dali/er", "2024-05")) == 1
    assert len(engine.store.visits_in("dali/er/haidong", "2024-05")) == 1
    assert engine.store.visits_in("dali/eryuan", "2024-05") == []
    assert engine.store.visits_in("dali", "2024-06") == []
    with pytest.raises(AlertError, match="YYYY-MM"):
        engine.store.visits_in("dali", "May")


def test_unflagging_clears_the_alert(setup: Setup) -> None:
    engine, clock, _ = setup
    engine.store.set_flags([("P0003", "lives_alone", True)], T0)
    clock.t = T0 + 2 * DAY
    engine.tick()
    assert "P0003" in due(engine)
    engine.store.set_flags([("P0003", "lives_alone", False)], clock.t)
    engine.tick()
    assert due(engine) == {}


def test_flags_csv_all_or_nothing(setup: Setup, tmp_path: Path) -> None:
    engine, _, _ = setup
    bad = tmp_path / "flags.csv"
    bad.write_text(
        "person_id,flag,active\nP0001,lives_alone,1\nP9999,lives_alone,\n"
        "P0002,rich,1\nP0003,lives_alone,maybe\nP0001,lives_alone,0\n",
        encoding="utf-8",
    )
    with pytest.raises(FlagImportError) as info:
        read_flags_csv(bad, engine.settings.flags, engine.registry)
    text = "\n".join(info.value.problems)
    assert ":3: 人员不存在" in text and "P9999" in text
    assert ":4: 未知标记" in text and ":5: active" in text and ":6: 重复" in text
    good = tmp_path / "good.csv"
    good.write_text("\ufeffperson_id,flag\nP0001,lives_alone\nP0007,child_in_difficulty\n")
    rows = read_flags_csv(good, engine.settings.flags, engine.registry)
    assert rows == [("P0001", "lives_alone", True), ("P0007", "child_in_difficulty", True)]


def test_warmcard_flags_import_command(tmp_path: Path) -> None:
    write_registry(tmp_path, "wc")
    config = tmp_path / "ingest.toml"
    config.write_text(
        f'registry_path = "{tmp_path / "registry.sqlite3"}"\n'
        "[alerts]\n"
        f'db_path = "{tmp_path / "alerts.sqlite3"}"\n'
    )
    flags = tmp_path / "flags.csv"
    flags.write_text("person_id,flag\nP0001,lives_alone\nP0002,lives_alone\n")
    runner = CliRunner()
    r = runner.invoke(warmcard_app, ["flags", "import", str(flags), "--config", str(config)])
    assert r.exit_code == 0, r.output
    assert "2 flag(s) set" in r.output
    r = runner.invoke(warmcard_app, ["flags", "list", "--config", str(config)])
    assert r.output.splitlines() == ["P0001\tlives_alone\t独居 Lives alone",
                                     "P0002\tlives_alone\t独居 Lives alone"]  # fmt: skip
    flags.write_text("person_id,flag\nP0003,lives_alone\nNOPE,lives_alone\n")
    r = runner.invoke(warmcard_app, ["flags", "import", str(flags), "--config", str(config)])
    assert r.exit_code == 1 and "nothing imported" in r.output
    r = runner.invoke(warmcard_app, ["flags", "list", "--config", str(config)])
    assert "P0003" not in r.output
