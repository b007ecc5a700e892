"""The PN532 emulator as hosts see it: strict wakeup, what libnfc sends, unplugging."""

from __future__ import annotations

import time

import pytest

from firmware_gateway.pn532 import frames
from firmware_gateway.pn532.device import PN532
from firmware_gateway.pn532.emulator import PN532Emulator
from firmware_gateway.pn532.errors import NoAck
from firmware_gateway.pn532.transport import HsuTransport, open_serial
from firmware_gateway.readers.libnfc import LibnfcReader
from firmware_gateway.readers.pn532 import PN532Reader
from warmcard.contract import ReaderState


def test_asleep_until_wakeup_preamble() -> None:
    with PN532Emulator() as emu:
        dev = PN532(HsuTransport(open_serial(emu.path)))
        try:
            with pytest.raises(NoAck):  # power-on LowVbat: no wakeup, no answer
                dev.get_firmware_version()
            dev.wakeup()
            dev.sam_configuration()
            assert str(dev.get_firmware_version()) == "PN532 v1.6 (support 0x07)"
            dev.power_down()
            with pytest.raises(NoAck):
                dev.get_firmware_version()
        finally:
            dev.transport.close()


def test_unknown_command_gets_error_frame_and_nack_resends() -> None:
    with PN532Emulator() as emu:
        t = HsuTransport(open_serial(emu.path))
        try:
            t.wakeup()
            t.send_command(b"\x14\x01")
            assert t.read_response(0.5).data == b"\x15"
            t.send_command(b"\xee")
            assert t.read_response(0.5).kind is frames.Kind.ERROR
            t.send_command(b"\x02")
            first = t.read_response(0.5)
            t.request_resend()
            assert t.read_response(0.5) == first
        finally:
            t.close()


def test_libnfc_init_sequence_is_answered() -> None:
    with PN532Emulator() as emu:
        reader = LibnfcReader(f"libnfc:pn532_uart:{emu.path}:115200")
        assert reader.poll(0.2) is None
        assert reader.state is ReaderState.OK
        # What libnfc 1.8 pn532_uart sends at nfc_open + nfc_initiator_init, in order:
        # SAMConfiguration (after the wakeup), Diagnose echo, GetFirmwareVersion,
        # SetParameters, ReadRegister, WriteRegister, RFConfiguration...
        assert emu.commands[:6] == [0x14, 0x00, 0x02, 0x12, 0x06, 0x08]
        assert 0x4A in emu.commands
        reader.close()
        deadline = time.monotonic() + 2
        while 0x16 not in emu.commands and time.monotonic() < deadline:
            time.sleep(0.01)
        assert emu.commands[-1] == 0x16  # nfc_close powers the chip down


def test_unplugged_port_is_absent() -> None:
    emu = PN532Emulator().start()
    reader = PN532Reader(f"pn532:{emu.path}", wait_window=0.1, retry_interval=0.1)
    try:
        assert reader.poll(0.2) is None and reader.state is ReaderState.OK
        emu.close()  # the pty vanishes, like a USB-serial adapter pulled out
        end = time.monotonic() + 3
        while reader.state is ReaderState.OK and time.monotonic() < end:
            reader.poll(0.1)
        assert reader.state is ReaderState.ABSENT
    finally:
        reader.close()
        emu.close()


@pytest.mark.parametrize("driver", ["pn532", "libnfc"])
def test_card_held_through_a_reader_glitch_is_one_tap(driver: str) -> None:
    with PN532Emulator() as emu:
        reader: PN532Reader | LibnfcReader = (
            PN532Reader(f"pn532:{emu.path}", wait_window=0.2, retry_interval=0.2)
            if driver == "pn532"
            else LibnfcReader(f"libnfc:pn532_uart:{emu.path}:115200", retry_interval=0.2)
        )
        try:
            emu.present("04A1B2C3")
            assert reader.poll(2.0) == "04A1B2C3"
            emu.go_silent()
            end = time.monotonic() + 8
            while reader.state is ReaderState.OK and time.monotonic() < end:
                assert reader.poll(0.1) is None
            emu.come_back()
            end = time.monotonic() + 8
            seen: list[str | None] = []
            while time.monotonic() < end and (reader.state is not ReaderState.OK or not seen):
                uid = reader.poll(0.1)
                seen.append(uid)
                if reader.state is ReaderState.OK and len(seen) > 10:
                    break
            assert reader.state is ReaderState.OK
            assert [u for u in seen if u] == []
        finally:
            reader.close()
