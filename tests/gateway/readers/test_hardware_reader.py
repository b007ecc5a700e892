"""A real reader on a real Pi: run by a technician, skipped everywhere else.

    WARMCARD_HW_READER=pn532:/dev/serial0 .venv/bin/python -m pytest -m hardware -s

The test opens the driver the string names, checks the reader answers, then waits for a card
to be tapped (and removed) twice.
"""

from __future__ import annotations

import os
import time

import pytest

from firmware_gateway.readers import open_reader
from warmcard.contract import ReaderState
from warmcard.ids import CARD_UID_RE

SPEC = os.environ.get("WARMCARD_HW_READER", "")

pytestmark = [
    pytest.mark.hardware,
    pytest.mark.skipif(not SPEC, reason="no physical reader: set WARMCARD_HW_READER"),
]


def test_a_real_reader_answers_and_reads_two_taps() -> None:
    reader = open_reader(SPEC)
    try:
        deadline = time.monotonic() + 10
        while reader.state is not ReaderState.OK and time.monotonic() < deadline:
            reader.poll(0.5)
        assert reader.state is ReaderState.OK, f"{SPEC}: reader state {reader.state.value}"
        uids = []
        for n in (1, 2):
            print(f"\n请刷卡并拿开 Tap a card and take it away ({n}/2)…", flush=True)
            deadline = time.monotonic() + 30
            uid = None
            while uid is None and time.monotonic() < deadline:
                uid = reader.poll(0.5)
            assert uid is not None, "no card read within 30 s"
            assert CARD_UID_RE.fullmatch(uid), uid
            uids.append(uid)
        print(f"read {uids}")
    finally:
        reader.close()
