"""The roster cache on the SD card is sealed (issue #9): no name or card UID in clear, and a
kiosk restarted without a network still shows names."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from kiosk.cache import LocalCache
from kiosk.policy import Outcome
from tests.kiosk.test_runtime import ALICE, entrance, make_gateway
from tests.support.mqtt_watch import wait_until
from warmcard.contract import Roster

ROSTER = Roster(site_id="s-001", version="1", entries=[ALICE])


def clear_bytes_of(roster: Roster) -> list[bytes]:
    return [v.encode() for e in roster.entries for v in (e.display_name, e.card_uid, e.person_id)]


def test_roster_cache_has_no_name_or_uid_in_clear_and_serves_an_offline_restart(
    tmp_path: Path,
) -> None:
    """Before: roster.json was the roster's JSON, names and UIDs readable off the card."""
    device = "k-seal-gate"
    gateway, _reader, _feedback = make_gateway(tmp_path, device, 1, None)
    gateway.apply_config(entrance(device))  # as the uplink does on the retained downlink
    gateway.apply_roster(ROSTER)
    gateway.outbox.close()
    data = (tmp_path / device / "roster.json").read_bytes()
    assert data[:4] == b"WCS1"
    for clear in clear_bytes_of(ROSTER):
        assert clear not in data, clear
    # Restart with the broker unreachable (port 1): names come from the sealed cache.
    gateway, reader, feedback = make_gateway(tmp_path, device, 1, None)
    gateway.start()
    try:
        assert gateway.roster == ROSTER and gateway.config is not None
        time.sleep(0.4)
        reader.tap(ALICE.card_uid)
        assert wait_until(lambda: len(feedback.shown) == 1)
        assert feedback.shown[0][:2] == (Outcome.SUCCESS, "李秀英 已签到 Checked in")
    finally:
        gateway.stop()


def test_a_clear_text_cache_from_before_is_read_then_sealed(tmp_path: Path) -> None:
    (tmp_path / "roster.json").write_bytes(ROSTER.to_bytes())
    assert LocalCache(tmp_path).roster == ROSTER
    data = (tmp_path / "roster.json").read_bytes()
    assert data[:4] == b"WCS1" and b"\xe6\x9d\x8e" not in data  # 李
    assert LocalCache(tmp_path).roster == ROSTER


def test_systemd_credential_is_the_key_and_another_key_opens_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "cache-key").write_bytes(b"k" * 32)
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(creds))
    data = tmp_path / "data"
    LocalCache(data).update_roster(ROSTER)
    assert not (data / "cache.key").exists()  # the credential was used, none made
    assert LocalCache(data).roster == ROSTER
    other = tmp_path / "other.key"
    other.write_bytes(b"o" * 32)
    # Sealed with another key (a re-imaged kiosk): ignored, the broker's retained copy refills it.
    assert LocalCache(data, other).roster is None
