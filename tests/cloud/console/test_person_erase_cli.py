"""`warmcard person erase` as an operator runs it on the server: the person leaves the registry,
every registered kiosk gets an erase command to deliver, the audit log names the command."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from cloud_ingest.console.audit import AuditLog
from cloud_ingest.console.kiosk_erasure import KioskErasures
from cloud_ingest.registry.store import Registry
from tests.support.ingest import make_settings, write_registry
from warmcard.command.cli import app


def test_the_command_erases_and_queues_the_kiosks(
    tmp_path: Path, mosquitto: object, influxd: object, influx_db: str, topic_prefix: str
) -> None:
    ids = write_registry(tmp_path, topic_prefix)
    settings = make_settings(tmp_path, mosquitto, influxd, influx_db, topic_prefix)
    config = tmp_path / "ingest.toml"
    config.write_text(
        f'registry_path = "{settings.registry_path}"\n'
        f'deadletter_path = "{settings.deadletter_path}"\n'
        f'console_db = "{settings.console_db}"\n'
        f'[influx]\nurl = "{settings.influx.url}"\ndatabase = "{settings.influx.database}"\n',
        encoding="utf-8",
    )
    runner = CliRunner()
    done = runner.invoke(app, ["person", "erase", "P0003", "--config", str(config), "--yes"])
    assert done.exit_code == 0, done.output
    assert "P0003" in done.output

    registry = Registry(settings.registry_path)
    try:
        assert registry.query("SELECT count(*) FROM people WHERE person_id = 'P0003'") == [(0,)]
        assert registry.query("SELECT count(*) FROM people")[0][0] == 9  # the others stay
    finally:
        registry.close()
    # One erase command waits for each registered kiosk, to be sent by a console.
    kiosks = KioskErasures(settings.store("console"))
    try:
        pending = {
            c.device_id for c in kiosks.due({ids["gate_a"], ids["canteen_a"], ids["gate_b"]})
        }
        assert kiosks.pending() == 3
    finally:
        kiosks.close()
    assert pending == {ids["gate_a"], ids["canteen_a"], ids["gate_b"]}
    audit = AuditLog(settings.console_db)
    try:
        rows = [r for r in audit.rows() if r.action == "erase"]
        assert [(r.object_id, r.username.startswith("cli:")) for r in rows] == [("P0003", True)]
        assert audit.verify().ok
    finally:
        audit.close()

    # A second run finds nobody and says so, exiting 1.
    again = runner.invoke(app, ["person", "erase", "P0003", "--config", str(config), "--yes"])
    assert again.exit_code == 1
    assert "P0003" in again.output
