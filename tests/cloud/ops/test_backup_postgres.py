"""`warmcard backup` / `warmcard restore` with `[database] url`: the one PostgreSQL database of
every store goes out by `pg_dump --format=custom` under the SHA-256 manifest and back by
`pg_restore --clean`, into an empty database only; what comes back is what went out."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import uuid
from pathlib import Path

from sqlalchemy import inspect, text

from cloud_ingest.alerts.models import Finding, Kind
from cloud_ingest.alerts.store import AlertStore
from cloud_ingest.console.kiosk_erasure import KioskErasures
from cloud_ingest.db import STORES, Database
from cloud_ingest.pipeline.conflicts import SeenIndex
from cloud_ingest.pipeline.deadletter import DeadLetter, DeadLetterStore
from tests.support.ingest import EventMaker
from warmcard.command.servers.postgres import PostgreSQL
from warmcard.contract import Kind as Tap
from warmcard.rejections import Reason

AT = 1_800_000_000_000_000


def _fill(url: str) -> None:
    """Something in each store this branch keeps on `Database`; the others' tables exist."""
    alerts = AlertStore(url)
    letters = DeadLetterStore(url)
    seen = SeenIndex(url)
    kiosks = KioskErasures(url)
    try:
        alerts.raise_alert(Finding(Kind.DEVICE_OFFLINE, "k-1", AT, "终端离线", "offline"), "dali")
        alerts.set_flags([("P1", "lives_alone", True)], AT)
        letters.add_many(
            [DeadLetter(AT, "warmcard/v1/devices/k-1/events", b"{bad", Reason.INVALID_JSON, "x")]
        )
        seen.admit([EventMaker("k-1").make(Tap.CHECK_IN, "P1")], AT)
        kiosks.add("P2", ["04A1B202"], "erased-0123456789abcdef", ["k-1"])
        for store in ("registry", "console"):
            Database(url, store).close()
    finally:
        for s in (alerts, letters, seen, kiosks):
            s.close()


def _content(url: str) -> dict[str, list[str]]:
    """Every table's rows, sorted, as text."""
    db = Database(url, "alerts", migrate=False)
    try:
        with db.read() as conn:
            return {
                t: sorted(repr(tuple(r)) for r in conn.execute(text(f'SELECT * FROM "{t}"')))
                for t in sorted(inspect(conn).get_table_names())
            }
    finally:
        db.close()


def _toml(path: Path, url: str, influxd) -> Path:
    home = path.parent
    path.write_text(
        f'registry_path = "{home / "registry.sqlite3"}"\n'
        f'[database]\nurl = "{url}"\n'
        f'[influx]\nurl = "{influxd.url}"\ndatabase = "absent_{uuid.uuid4().hex[:8]}"\n'
        f'[backup]\nbroker_dir = "{home / "broker"}"\ndynsec_file = "{home / "dynsec.json"}"\n'
        f'influx_rpc = "127.0.0.1:{influxd.rpc_port}"\n'
    )
    return path


def _warmcard(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "warmcard", *args], capture_output=True, text=True, timeout=300
    )


def test_postgresql_round_trip(tmp_path: Path, postgres: PostgreSQL, pg_url: str, influxd) -> None:
    _fill(pg_url)
    before = _content(pg_url)
    assert all(before[t] for t in ("alerts", "dead_letters", "seen", "kiosk_erasures"))
    assert {"users", "people"} <= set(before)  # the console's and registry's tables too

    out = tmp_path / "backup"
    done = _warmcard(
        "backup", "--config", str(_toml(tmp_path / "a.toml", pg_url, influxd)), "--out", str(out)
    )
    assert done.returncode == 0, done.stderr
    entry = next(
        s
        for s in json.loads((out / "manifest.json").read_text())["stores"]
        if s["name"] == "database"
    )
    (item,) = entry["files"]
    assert entry["kind"] == "postgresql" and item["mode"] == 0o600
    assert hashlib.sha256((out / item["path"]).read_bytes()).hexdigest() == item["sha256"]

    # Over the database it came from (it holds data): refused, nothing changed.
    refused = _warmcard("restore", "--config", str(tmp_path / "a.toml"), str(out))
    assert refused.returncode == 1 and "holds data in alerts" in refused.stderr
    assert _content(pg_url) == before

    # Into a database where the services already created the (empty) tables: restored.
    name = f"r_{uuid.uuid4().hex[:12]}"
    postgres.psql("postgres", f'CREATE DATABASE "{name}"')
    target = pg_url.rsplit("/", 1)[0] + f"/{name}"
    try:
        for store in STORES:  # as the services would at their first start
            Database(target, store).close()
        (tmp_path / "restored").mkdir()
        config = _toml(tmp_path / "restored" / "b.toml", target, influxd)
        done = _warmcard("restore", "--config", str(config), str(out))
        assert done.returncode == 0, done.stderr
        assert _content(target) == before
        alerts = AlertStore(target)  # the product's own code on the restored database
        try:
            assert [a.detail_en for a in alerts.find([""])] == ["offline"]
            assert alerts.raise_alert(Finding(Kind.DEVICE_OFFLINE, "k-2", AT, "离线", "x"), "") == 2
        finally:
            alerts.close()
    finally:
        postgres.psql("postgres", f'DROP DATABASE "{name}" WITH (FORCE)')
