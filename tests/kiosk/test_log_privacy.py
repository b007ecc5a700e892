"""The kiosk's log names nobody: no name, no card number, for any kind of tap (issue #9, item 9).

A real kiosk (SimReader, the log feedback the service always adds, real Mosquitto) taps a known
card, the same card again (repeat), an unknown card, and then runs out of disk; every log record
of every logger, at DEBUG, is searched for the name and the card numbers."""

from __future__ import annotations

import logging
import random
import time
from pathlib import Path

import pytest

from firmware_gateway.clock import SystemClock
from firmware_gateway.readers.sim import SimReader
from firmware_gateway.settings import GatewaySettings
from kiosk.feedback import LogFeedback, MultiFeedback
from kiosk.policy import Outcome
from kiosk.runtime import Kiosk
from tests.kiosk.test_runtime import FAST, entrance
from tests.support.mqtt_watch import wait_until
from warmcard.command.servers import Mosquitto
from warmcard.contract import Roster, RosterEntry
from warmcard.settings import MqttSettings

NAME = "杨桂英"
CARD = "04A1B2C3D4E5F6"
STRANGER = "DEADBEEF"
PERSON = RosterEntry(card_uid=CARD, person_id="p-0042", display_name=NAME)


def _kiosk(tmp_path: Path, device: str, port: int, **kw: object) -> tuple[Kiosk, SimReader]:
    settings = GatewaySettings(
        device_id=device,
        data_dir=tmp_path / device,
        mqtt=MqttSettings(port=port),
        heartbeat_s=0.5,
        initial_config=entrance(device, debounce_s=0.2),
        **kw,  # type: ignore[arg-type]
    )
    reader = SimReader()
    feedback = MultiFeedback(LogFeedback())
    kiosk = Kiosk(
        settings, reader, feedback, SystemClock(), rng=random.Random(5), timing=FAST, tick_s=0.1
    )
    kiosk.apply_roster(Roster(site_id="s-001", version="1", entries=[PERSON]))
    return kiosk, reader


def test_no_name_or_card_number_in_the_kiosk_log(
    tmp_path: Path, mosquitto: Mosquitto, topic_prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    kiosk, reader = _kiosk(tmp_path, f"{topic_prefix}-gate", mosquitto.port)
    kiosk.start()
    try:
        reader.tap(CARD)  # check-in
        reader.tap(CARD)  # within debounce: a repeat
        time.sleep(0.3)
        reader.tap(CARD)  # check-out
        reader.tap(STRANGER)  # unknown card
        assert wait_until(lambda: kiosk.outbox.last_seq() == 3)
    finally:
        kiosk.stop()
    # The disk full path logs the tap it could not record.
    full, reader = _kiosk(tmp_path, f"{topic_prefix}-full", 1, min_free_bytes=2**62)
    full.start()
    try:
        reader.tap(CARD)
        assert wait_until(lambda: any("NOT recorded" in r.getMessage() for r in caplog.records))
    finally:
        full.stop()
    lines = [r.getMessage() for r in caplog.records]
    naming = [line for line in lines if NAME in line]
    carded = [line for line in lines if CARD in line.upper() or STRANGER in line.upper()]
    print(f"\nkiosk log lines naming a person: {len(naming)}; with a card number: {len(carded)}")
    taps = [line for line in lines if " seq " in line]
    assert len(taps) == 3, lines  # the taps are logged, by pseudonymous id
    assert all("p-0042" in line or "unknown-card" in line for line in taps), taps
    assert any(line.startswith("feedback ") for line in lines)
    assert naming == [], naming
    assert carded == [], carded
    # The screen still greets the elder by name: only the log lost it.
    assert any(o is Outcome.SUCCESS for o, _ in kiosk.feedback.channels[0].shown)  # type: ignore[attr-defined]
    assert NAME in kiosk.feedback.channels[0].shown[0][1]  # type: ignore[attr-defined]
