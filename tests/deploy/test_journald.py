"""journald retention is set by the units: each Warmcard unit logs to the `warmcard` namespace,
whose config keeps logs 14 days; the kiosk installer installs that config (issue #9, item 9)."""

from __future__ import annotations

import configparser
from pathlib import Path

import pytest

SYSTEMD = Path(__file__).resolve().parents[2] / "systemd"
UNITS = ("warmcard-kiosk.service", "warmcard-ingest.service", "warmcard-console.service")


@pytest.mark.parametrize("unit", UNITS)
def test_unit_logs_to_the_warmcard_namespace(unit: str) -> None:
    lines = (SYSTEMD / unit).read_text().splitlines()
    assert "LogNamespace=warmcard" in lines


def test_namespace_keeps_logs_fourteen_days() -> None:
    conf = configparser.ConfigParser()
    conf.read(SYSTEMD / "journald@warmcard.conf")
    assert conf["Journal"]["MaxRetentionSec"] == "14day"
    assert conf["Journal"]["SystemMaxUse"]
    installer = (SYSTEMD / "install-kiosk.sh").read_text()
    assert "/etc/systemd/journald@warmcard.conf" in installer
