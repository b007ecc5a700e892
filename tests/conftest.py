"""Fixtures: real Mosquitto, InfluxDB and PostgreSQL servers on free ports, one per test
session; headless Chromium for the page tests and where their screenshots go."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser

from tests.support.console import chromium, screenshot_folder
from tests.support.databases import StoreAt
from warmcard.command.servers import InfluxD, Mosquitto
from warmcard.command.servers.postgres import PostgreSQL


@pytest.fixture(scope="session")
def servers_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("servers")


@pytest.fixture(scope="session")
def mosquitto(servers_dir: Path) -> Iterator[Mosquitto]:
    with Mosquitto(servers_dir / "mosquitto") as broker:
        yield broker


@pytest.fixture(scope="session")
def influxd(servers_dir: Path) -> Iterator[InfluxD]:
    with InfluxD(servers_dir / "influxd") as server:
        yield server


@pytest.fixture
def influx_db(influxd: InfluxD) -> Iterator[str]:
    """A fresh database name for one test; dropped afterwards."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    httpx.post(f"{influxd.url}/query", data={"q": f'CREATE DATABASE "{name}"'}).raise_for_status()
    yield name
    httpx.post(f"{influxd.url}/query", data={"q": f'DROP DATABASE "{name}"'})


@pytest.fixture(scope="session")
def postgres(servers_dir: Path) -> Iterator[PostgreSQL]:
    server = PostgreSQL(servers_dir / "postgresql")
    server.start()
    yield server
    server.cleanup()


@pytest.fixture
def pg_url(postgres: PostgreSQL) -> Iterator[str]:
    """A fresh PostgreSQL database for one test (every store in it, as in production)."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    postgres.psql("postgres", f'CREATE DATABASE "{name}"')
    yield postgres.url.rsplit("/", 1)[0] + f"/{name}"
    postgres.psql("postgres", f'DROP DATABASE "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", "postgresql"])
def store_at(request: pytest.FixtureRequest, tmp_path: Path) -> StoreAt:
    """Where a store lives, on each backend in turn: `store_at("registry")` is an SQLite file
    in tmp, or the URL of one fresh PostgreSQL database shared by every store of the test."""
    if request.param == "sqlite":
        return lambda store: tmp_path / f"{store}.sqlite3"
    url = request.getfixturevalue("pg_url")
    return lambda store: url


@pytest.fixture
def topic_prefix() -> str:
    """A unique device-id prefix, so tests sharing one broker never see each other's topics."""
    return f"t{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    """One headless Chromium for the session; each test opens its own context."""
    with chromium() as launched:
        yield launched


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    """Where screenshots go: WARMCARD_SCREENSHOT_DIR (docs/screenshots for the README) or tmp."""
    return screenshot_folder(tmp_path)


# Tests that use a real server (Mosquitto, InfluxDB, Chromium) or live in the end-to-end and
# fault folders are "servers" tests; `make test-fast` runs the rest, the unit layer.
SERVER_FIXTURES = frozenset(
    {"mosquitto", "influxd", "influx_db", "browser", "pipeline", "postgres", "pg_url"}
)
SERVER_FOLDERS = ("e2e", "faults")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        folder = item.path.relative_to(Path(__file__).parent).parts[0]
        fixtures = set(getattr(item, "fixturenames", ()))
        if fixtures & SERVER_FIXTURES or folder in SERVER_FOLDERS:
            item.add_marker(pytest.mark.servers)
