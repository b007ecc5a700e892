"""One tap contract, run against every reader driver: sim, pn532 and libnfc (both against the
PN532 emulator on a pty, libnfc for real through pynfc), and hid (simulated wedge reader)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest

from firmware_gateway.pn532.emulator import PN532Emulator
from firmware_gateway.readers.base import Reader
from firmware_gateway.readers.hid import HidReader
from firmware_gateway.readers.libnfc import LibnfcReader
from firmware_gateway.readers.pn532 import PN532Reader
from firmware_gateway.readers.sim import SimReader
from firmware_gateway.readers.wedge_sim import WedgeReaderSim
from warmcard.contract import ReaderState

UID4 = "04A1B2C3"
UID7 = "04112233445566"


@dataclass
class Rig:
    """A driver plus the handles that move cards and inject faults at its (simulated) device."""

    reader: Reader
    present: Callable[[str], None]
    remove: Callable[[], None]
    garble: Callable[[], None]
    silence: Callable[[], None]
    restore: Callable[[], None]
    removal_s: float  # how long the driver needs to notice a removal


def _pn532_rig() -> Iterator[Rig]:
    with PN532Emulator() as emu:
        reader = PN532Reader(f"pn532:{emu.path}", wait_window=0.3, retry_interval=0.2)
        yield Rig(
            reader, emu.present, emu.remove, emu.garble_next, emu.go_silent, emu.come_back, 0.6
        )
        reader.close()


def _libnfc_rig() -> Iterator[Rig]:
    with PN532Emulator() as emu:
        reader = LibnfcReader(f"libnfc:pn532_uart:{emu.path}:115200", retry_interval=0.2)
        yield Rig(
            reader, emu.present, emu.remove, emu.garble_next, emu.go_silent, emu.come_back, 0.6
        )
        reader.close()


def _sim_rig() -> Iterator[Rig]:
    sim = SimReader()
    # The simulated reader has no wire, so nothing can be garbled on it.
    yield Rig(sim, sim.present, sim.remove, lambda: None, sim.fail, sim.recover, 0.0)
    sim.close()


def _hid_rig() -> Iterator[Rig]:
    wedge = WedgeReaderSim(repeat_every=0.15)
    reader = HidReader(
        "hid:/dev/input/by-id/usb-sim-event-kbd",
        open_device=wedge.open,
        repeat_window=0.5,
        retry_interval=0.2,
    )
    yield Rig(
        reader,
        wedge.present,
        wedge.remove,
        wedge.garble_next,
        wedge.go_silent,
        wedge.come_back,
        0.6,
    )
    reader.close()
    wedge.close()


RIGS = {"sim": _sim_rig, "pn532": _pn532_rig, "libnfc": _libnfc_rig, "hid": _hid_rig}


@pytest.fixture(params=sorted(RIGS))
def rig(request: pytest.FixtureRequest) -> Iterator[Rig]:
    yield from RIGS[request.param]()


def next_uid(reader: Reader, within: float) -> str | None:
    end = time.monotonic() + within
    while time.monotonic() < end:
        uid = reader.poll(0.1)
        if uid is not None:
            return uid
    return None


def uids_during(reader: Reader, seconds: float) -> list[str]:
    seen, end = [], time.monotonic() + seconds
    while time.monotonic() < end:
        uid = reader.poll(0.1)
        if uid is not None:
            seen.append(uid)
    return seen


def wait_state(reader: Reader, want: Callable[[ReaderState], bool], within: float) -> ReaderState:
    end = time.monotonic() + within
    while time.monotonic() < end and not want(reader.state):
        reader.poll(0.1)
    return reader.state


class TestReaderContract:
    def test_presented_card_gives_its_uid(self, rig: Rig) -> None:
        assert uids_during(rig.reader, 0.3) == []
        rig.present(UID4)
        assert next_uid(rig.reader, 2.0) == UID4
        assert rig.reader.state is ReaderState.OK

    def test_held_card_is_one_tap(self, rig: Rig) -> None:
        rig.present(UID4)
        assert next_uid(rig.reader, 2.0) == UID4
        assert uids_during(rig.reader, 1.2) == []

    def test_removed_and_presented_again_is_a_second_tap(self, rig: Rig) -> None:
        rig.present(UID4)
        assert next_uid(rig.reader, 2.0) == UID4
        rig.remove()
        assert uids_during(rig.reader, rig.removal_s) == []
        rig.present(UID4)
        assert next_uid(rig.reader, 2.0) == UID4

    def test_another_card_while_one_was_held(self, rig: Rig) -> None:
        rig.present(UID4)
        assert next_uid(rig.reader, 2.0) == UID4
        rig.remove()
        rig.present(UID7)
        assert next_uid(rig.reader, 2.0) == UID7

    def test_garbled_frame_is_survived(self, rig: Rig) -> None:
        assert uids_during(rig.reader, 0.2) == []
        rig.garble()
        rig.present(UID7)
        assert next_uid(rig.reader, 3.0) == UID7
        assert rig.reader.state is ReaderState.OK

    def test_silent_reader_faults_then_recovers(self, rig: Rig) -> None:
        assert uids_during(rig.reader, 0.2) == []
        assert rig.reader.state is ReaderState.OK
        rig.silence()
        state = wait_state(rig.reader, lambda s: s is not ReaderState.OK, 8.0)
        assert state in (ReaderState.FAULT, ReaderState.ABSENT)
        rig.restore()
        assert wait_state(rig.reader, lambda s: s is ReaderState.OK, 8.0) is ReaderState.OK
        rig.present(UID4)
        assert next_uid(rig.reader, 3.0) == UID4
