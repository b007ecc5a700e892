# mypy: allow-untyped-defs
"""The live console for the browser tests of this folder (a test module may define its own)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from cloud_ingest.alerts.settings import AlertSettings
from tests.support.console import LiveConsole, live_console


@pytest.fixture
def console(tmp_path, mosquitto, influxd, influx_db, topic_prefix) -> Iterator[LiveConsole]:
    """Alert timings short enough to watch: evaluated every 0.5 s, offline alarm after 1 s."""
    alerts = AlertSettings(evaluate_s=0.5, offline_alarm_s=1.0, heartbeat_alarm_s=60.0)
    with live_console(
        tmp_path, mosquitto, influxd, influx_db, topic_prefix, alerts=alerts
    ) as running:
        yield running
