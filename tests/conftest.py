"""Fixtures: real Mosquitto and InfluxDB servers on free ports, one per test session; headless
Chromium for the page tests and where their screenshots go."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser

from tests.support.console import chromium, screenshot_folder
from warmcard.command.servers import InfluxD, Mosquitto


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
SERVER_FIXTURES = frozenset({"mosquitto", "influxd", "influx_db", "browser", "pipeline"})
SERVER_FOLDERS = ("e2e", "faults")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        folder = item.path.relative_to(Path(__file__).parent).parts[0]
        fixtures = set(getattr(item, "fixturenames", ()))
        if fixtures & SERVER_FIXTURES or folder in SERVER_FOLDERS:
            item.add_marker(pytest.mark.servers)
