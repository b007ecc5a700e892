"""Taps are kept for a set time, on the production InfluxDB config (issue #9, items 11 and 13).

Before: the database's only policy was `autogen`, duration 0s (forever), and the test InfluxDB
ran without authentication on any config but the one in warmcard/command/servers.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from cloud_ingest.errors import StorageRejected
from cloud_ingest.pipeline.influx import InfluxV1
from cloud_ingest.pipeline.settings import InfluxSettings
from cloud_ingest.settings import IngestSettings
from tests.support.ingest import EventMaker, Publisher, wait_for, write_registry
from tests.support.stack import Stack
from warmcard.command.servers import SECURE_INFLUX_CONF, InfluxD, Mosquitto
from warmcard.contract import Kind
from warmcard.timestamps import now_us

pytestmark = pytest.mark.servers
DAY_US = 86_400_000_000
RECENT = now_us() - DAY_US


@pytest.fixture(scope="module")
def secure_influx(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InfluxD]:
    with InfluxD(tmp_path_factory.mktemp("influx-secure"), secure=True) as server:
        yield server


def settings_for(server: InfluxD, db: str, retention_days: int = 1096) -> InfluxSettings:
    return InfluxSettings.model_validate(
        {
            "url": server.url,
            "database": db,
            "username": server.user,
            "password": server.password,
            "retention_days": retention_days,
        }
    )


def policies(server: InfluxD, db: str) -> dict[str, tuple[str, bool]]:
    response = httpx.post(
        f"{server.url}/query",
        data={"q": f'SHOW RETENTION POLICIES ON "{db}"'},
        auth=(server.admin_user, server.admin_password),
    )
    series = response.json()["results"][0]["series"][0]
    cols = series["columns"]
    rows = [dict(zip(cols, r, strict=False)) for r in series["values"]]
    return {r["name"]: (r["duration"], r["default"]) for r in rows}


def test_the_production_config_is_loopback_and_authenticated(secure_influx: InfluxD) -> None:
    text = SECURE_INFLUX_CONF.read_text()
    assert 'bind-address = "127.0.0.1:8086"' in text and "auth-enabled = true" in text
    anonymous = httpx.post(f"{secure_influx.url}/query", data={"q": "SHOW DATABASES"})
    assert anonymous.status_code == 401
    wrong = httpx.post(
        f"{secure_influx.url}/query", data={"q": "SHOW DATABASES"}, auth=("warmcard", "guess")
    )
    assert wrong.status_code == 401


def test_a_new_database_gets_the_taps_policy_as_default(secure_influx: InfluxD) -> None:
    storage = InfluxV1(settings_for(secure_influx, "rp_new"))
    try:
        storage.ensure_database()
        assert policies(secure_influx, "rp_new") == {"warmcard_taps": ("26304h0m0s", True)}
        storage.write([f"taps,device=k-1 seq=1i {RECENT}"])
        assert storage.query('SELECT "seq" FROM "taps"')[0].values == [[RECENT, 1]]
        # InfluxDB itself refuses a point older than the policy keeps.
        with pytest.raises(StorageRejected, match="beyond retention policy"):
            storage.write([f"taps,device=k-1 seq=2i {RECENT - 1100 * DAY_US}"])
        # A changed setting is applied at the next start.
        shorter = InfluxV1(settings_for(secure_influx, "rp_new", retention_days=730))
        shorter.ensure_database()
        shorter.close()
        assert policies(secure_influx, "rp_new") == {"warmcard_taps": ("17520h0m0s", True)}
    finally:
        storage.close()


def test_a_database_from_before_keeps_its_points_and_gets_a_duration(
    secure_influx: InfluxD,
) -> None:
    storage = InfluxV1(settings_for(secure_influx, "rp_old"))
    try:
        storage._query_raw('CREATE DATABASE "rp_old"', with_db=False)  # as versions before did
        assert policies(secure_influx, "rp_old") == {"autogen": ("0s", True)}
        storage.write([f"taps,device=k-1 seq=7i {RECENT}"])
        storage.ensure_database()
        assert policies(secure_influx, "rp_old") == {"autogen": ("26304h0m0s", True)}
        assert storage.query('SELECT "seq" FROM "taps"')[0].values == [[RECENT, 7]]
    finally:
        storage.close()


def test_ingest_stores_taps_with_the_credentials_of_ingest_toml(
    secure_influx: InfluxD, mosquitto: Mosquitto, tmp_path: Path, topic_prefix: str
) -> None:
    ids = write_registry(tmp_path, topic_prefix)
    toml = tmp_path / "ingest.toml"
    toml.write_text(
        f"""client_id = "ingest-{topic_prefix}"
share_group = "g{topic_prefix}"
registry_path = "{tmp_path / "registry.sqlite3"}"
deadletter_path = "{tmp_path / "deadletter.sqlite3"}"
console_db = "{tmp_path / "console.sqlite3"}"
batch_ms = 50
[mqtt]
port = {mosquitto.port}
[influx]
url = "{secure_influx.url}"
database = "rp_ingest"
username = "{secure_influx.user}"
password = "{secure_influx.password}"
"""
    )
    settings = IngestSettings.load(toml)
    publisher = Publisher(mosquitto.port)
    try:
        with Stack(settings) as stack:
            maker = EventMaker(ids["gate_a"])
            publisher.publish([maker.make(Kind.CHECK_IN, "P0001")])
            wait_for(lambda: stack.metrics.acked >= 1)
            assert stack.worker_metrics.stored == 1
    finally:
        publisher.close()
    assert policies(secure_influx, "rp_ingest") == {"warmcard_taps": ("26304h0m0s", True)}
