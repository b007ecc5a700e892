"""`warmcard backup` / `warmcard restore` round trip: every store filled by the real services,
backed up by the command, wiped, restored, and compared; a backup that does not verify, or a
restore that would overwrite, changes nothing."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest

from cloud_ingest.alerts.models import Finding
from cloud_ingest.alerts.models import Kind as AlertKind
from cloud_ingest.alerts.store import AlertStore
from cloud_ingest.ops.backup.settings import BackupSettings
from cloud_ingest.pipeline.deadletter import DeadLetterStore
from cloud_ingest.pipeline.influx import InfluxV1
from cloud_ingest.pipeline.live import LiveState
from cloud_ingest.registry.store import Registry
from cloud_ingest.settings import IngestSettings
from tests.support.console import console_db_for
from tests.support.ingest import (
    EXPECTED_LIVE,
    Publisher,
    check_live,
    influx_counts,
    live_numbers,
    make_settings,
    running,
    scenario,
    wait_for,
    write_registry,
)
from warmcard.command.pki import init_ca, issue_device_cert, issue_server_cert
from warmcard.command.provision import BrokerFiles, init_broker
from warmcard.command.servers import SECURE_CONF_DIR
from warmcard.contract import events_topic


def _settings(home: Path, mosquitto, influxd, db: str, prefix: str) -> IngestSettings:
    return make_settings(
        home,
        mosquitto,
        influxd,
        db,
        prefix,
        seen_index_path=home / "seen.sqlite3",
        backup=BackupSettings(
            broker_dir=home / "broker",
            dynsec_file=home / "mosquitto-lib" / "dynamic-security.json",
            influx_rpc=f"127.0.0.1:{influxd.rpc_port}",
        ),
    )


def _toml(settings: IngestSettings, path: Path) -> Path:
    """ingest.toml naming every store of `settings`, as an operator's file would."""
    b = settings.backup
    path.write_text(
        f'client_id = "{settings.client_id}"\n'
        f'registry_path = "{settings.registry_path}"\n'
        f'deadletter_path = "{settings.deadletter_path}"\n'
        f'seen_index_path = "{settings.seen_index_file}"\n'
        f'console_db = "{settings.console_db}"\n'
        f'[influx]\nurl = "{settings.influx.url}"\ndatabase = "{settings.influx.database}"\n'
        f'[alerts]\ndb_path = "{settings.alerts_db_file}"\n'
        f'[backup]\nbroker_dir = "{b.broker_dir}"\ndynsec_file = "{b.dynsec_file}"\n'
        f'influx_rpc = "{b.influx_rpc}"\n'
    )
    return path


def _warmcard(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "warmcard", *args], capture_output=True, text=True, timeout=300
    )


def _sqlite_paths(s: IngestSettings) -> dict[str, Path]:
    return {
        "registry": s.registry_path,
        "console": s.console_db,
        "alerts": s.alerts_db_file,
        "deadletters": s.deadletter_path,
        "conflicts": s.seen_index_file,
    }


def _dump(path: Path) -> list[str]:
    conn = sqlite3.connect(path)
    try:
        return list(conn.iterdump())
    finally:
        conn.close()


def _files(root: Path) -> dict[str, tuple[bytes, int]]:
    return {
        p.relative_to(root).as_posix(): (p.read_bytes(), p.stat().st_mode & 0o777)
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name != ".provision.lock"
    }


def _influx_rows(s: IngestSettings) -> list[list[object]]:
    r = httpx.post(
        f"{s.influx.url}/query",
        params={"db": s.influx.database, "epoch": "u"},
        data={"q": 'SELECT * FROM "taps" ORDER BY time'},
    )
    r.raise_for_status()
    series = r.json()["results"][0].get("series", [])
    return [row for one in series for row in one["values"]]


def _fill(settings: IngestSettings, ids: dict[str, str], mosquitto) -> None:
    """Taps through the real worker (InfluxDB, conflict index), one dead letter, one alert, the
    broker's CA, certificates and plugin state as `warmcard provision` makes them."""
    events, expected = scenario(ids)
    publisher = Publisher(mosquitto.port)
    try:
        with running(settings) as stack:
            publisher.publish(events)
            publisher.publish_raw(events_topic(ids["gate_a"]), b"{not json")
            wait_for(lambda: influx_counts(settings) == expected)
            wait_for(lambda: stack.deadletters.counts() == {"invalid_json": 1})
            check_live(stack.console, ids)
    finally:
        publisher.close()
    alerts = AlertStore.open(settings.alerts_db_file)
    try:
        alerts.raise_alert(
            Finding(
                AlertKind.DEVICE_OFFLINE,
                ids["gate_b"],
                1_700_000_000_000_000,
                "终端离线",
                "kiosk offline",
                site_id=ids["site_b"],
                device_id=ids["gate_b"],
            ),
            "dali/dalishi/zhoucheng",
        )
    finally:
        alerts.close()
    files = BrokerFiles.at(
        settings.backup.broker_dir,
        SECURE_CONF_DIR / "dynsec-roles.json",
        settings.backup.dynsec_file,
    )
    init_ca(files.ca)
    issue_server_cert(files.ca, ["127.0.0.1"])
    init_broker(files)
    record = files.broker_dir / "devices" / f"{ids['gate_a']}.crt"
    record.parent.mkdir()
    record.write_bytes(issue_device_cert(files.ca, ids["gate_a"]).cert_pem)


def test_backup_wipe_restore_round_trip(tmp_path, mosquitto, influxd, influx_db, topic_prefix):
    live = tmp_path / "live"
    live.mkdir()
    ids = write_registry(live, topic_prefix)
    console_db_for(live, ids)
    settings = _settings(live, mosquitto, influxd, influx_db, topic_prefix)
    _fill(settings, ids, mosquitto)
    config = _toml(settings, tmp_path / "ingest.toml")

    before_sql = {name: _dump(path) for name, path in _sqlite_paths(settings).items()}
    before_taps = _influx_rows(settings)
    before_broker = _files(settings.backup.broker_dir)
    before_dynsec = settings.backup.dynsec_file.read_bytes()
    # Every store holds something, so equality below means something.
    assert all(any("INSERT" in line for line in dump) for dump in before_sql.values())
    assert len(before_taps) == 12
    assert {"ca.key", "ca.crt", "server.key", "dynsec-admin.secret"} <= set(before_broker)
    assert before_broker["ca.key"][1] == 0o600 and before_broker["ca.crt"][1] == 0o644

    out = tmp_path / "backup"
    done = _warmcard("backup", "--config", str(config), "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert (out / "manifest.json").is_file()
    assert any(out.glob("influxdb/*.manifest"))  # influxd's own portable format
    assert out.stat().st_mode & 0o777 == 0o700

    # Wipe: the restored deployment lives in new, empty folders; the InfluxDB database is
    # still there at first, so the restore must refuse and touch nothing.
    home = tmp_path / "restored"
    restored = _settings(home, mosquitto, influxd, influx_db, topic_prefix)
    restored_config = _toml(restored, tmp_path / "restored.toml")
    refused = _warmcard("restore", "--config", str(restored_config), str(out))
    assert refused.returncode == 1
    assert f"database {influx_db!r} exists" in refused.stderr
    assert not home.exists()

    httpx.post(f"{influxd.url}/query", data={"q": f'DROP DATABASE "{influx_db}"'})
    assert _influx_rows(settings) == []
    done = _warmcard("restore", "--config", str(restored_config), str(out))
    assert done.returncode == 0, done.stderr

    for name, path in _sqlite_paths(restored).items():
        assert path.parent == home or path.parent.parent == home
        assert _dump(path) == before_sql[name], name
    assert _influx_rows(restored) == before_taps
    assert _files(restored.backup.broker_dir) == before_broker  # bytes and modes
    assert restored.backup.dynsec_file.read_bytes() == before_dynsec
    assert restored.backup.dynsec_file.stat().st_mode & 0o777 == 0o600

    # Spot values, read by the product's own code on the restored files.
    alerts = AlertStore.open(restored.alerts_db_file)
    try:
        found = alerts.find([""], kinds=[AlertKind.DEVICE_OFFLINE])
        assert [(a.subject, a.detail_en) for a in found] == [(ids["gate_b"], "kiosk offline")]
    finally:
        alerts.close()
    letters = DeadLetterStore(restored.deadletter_path)
    registry = Registry(restored.registry_path)
    storage = InfluxV1(restored.influx)
    try:
        assert letters.list(1)[0].payload == b"{not json"
        site = registry.site(ids["site_a"])
        assert site is not None and site.name_zh == "喜洲幸福小院"
        live = LiveState(registry, storage)
        assert live.rebuild() == 12  # today's figures rebuilt from the restored InfluxDB
        assert live_numbers(SimpleNamespace(live=live), ids) == EXPECTED_LIVE
    finally:
        storage.close()
        registry.close()
        letters.close()

    # Restoring a second time would overwrite: refused, naming what exists.
    again = _warmcard("restore", "--config", str(restored_config), str(out), "--only", "registry")
    assert again.returncode == 1 and str(restored.registry_path) in again.stderr


@pytest.mark.parametrize("damage", ["flip", "truncate", "remove"])
def test_restore_refuses_a_backup_that_does_not_verify(tmp_path, damage):
    from cloud_ingest.errors import BackupError, BackupUnverified
    from cloud_ingest.ops.backup import backup, restore
    from cloud_ingest.ops.backup.stores import FileSetStore, SqliteStore, Store

    source = tmp_path / "reg.sqlite3"
    conn = sqlite3.connect(source)
    conn.execute("CREATE TABLE t (v TEXT)")
    conn.execute("INSERT INTO t VALUES ('kept')")
    conn.commit()
    conn.close()
    ca = tmp_path / "ca"
    ca.mkdir()
    (ca / "ca.key").write_bytes(b"-----BEGIN PRIVATE KEY-----\n")
    os.chmod(ca / "ca.key", 0o600)
    out = tmp_path / "backup"
    backup([SqliteStore("registry", source), FileSetStore("broker", ca)], out)

    copy = out / "broker" / "ca.key"
    if damage == "flip":
        data = bytearray(copy.read_bytes())
        data[3] ^= 0x01
        copy.write_bytes(bytes(data))
    elif damage == "truncate":
        copy.write_bytes(copy.read_bytes()[:-1])
    else:
        copy.unlink()
    target = tmp_path / "new"
    stores: list[Store] = [
        SqliteStore("registry", target / "reg.sqlite3"),
        FileSetStore("broker", target / "ca"),
    ]
    with pytest.raises(BackupUnverified, match=r"broker/ca\.key"):
        restore(stores, out)
    assert not target.exists()  # the registry, which did verify, was not restored either

    shutil.rmtree(out / "broker")
    (out / "manifest.json").unlink()
    with pytest.raises(BackupError, match=r"no manifest\.json"):
        restore(stores, out)
