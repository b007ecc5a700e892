# mypy: allow-untyped-defs
"""Fixtures of the ops tests: the test registry, settings, a real InfluxDB and the registry."""

from __future__ import annotations

import pytest

from cloud_ingest.pipeline.influx import InfluxV1
from cloud_ingest.registry.store import Registry
from tests.support.ingest import make_settings, write_registry


@pytest.fixture
def env(tmp_path, mosquitto, influxd, influx_db, topic_prefix):
    ids = write_registry(tmp_path, topic_prefix)
    settings = make_settings(tmp_path, mosquitto, influxd, influx_db, topic_prefix)
    storage = InfluxV1(settings.influx)
    registry = Registry(settings.registry_path)
    yield ids, settings, storage, registry
    storage.close()
    registry.close()
