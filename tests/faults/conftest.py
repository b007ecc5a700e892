"""Fixtures of the fault suite: a whole pipeline per test (its own broker; shared InfluxDB)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.faults.pipeline import Pipeline
from warmcard.command.servers import InfluxD


@pytest.fixture
def pipeline(tmp_path: Path, influxd: InfluxD, influx_db: str) -> Iterator[Pipeline]:
    """Broker (per test, since some tests kill it), registry, per-test InfluxDB database."""
    p = Pipeline(tmp_path, influxd, influx_db)
    try:
        yield p
    finally:
        p.close()
