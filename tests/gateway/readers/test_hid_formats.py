"""Card-number formats typed by keyboard-wedge readers, and the HID driver's input handling."""

from __future__ import annotations

import time

import pytest

from firmware_gateway.errors import UnknownReaderSpec
from firmware_gateway.readers import open_reader
from firmware_gateway.readers.hid import HidReader, parse_spec
from firmware_gateway.readers.wedge_sim import WedgeReaderSim
from warmcard.cards import BadCardNumber, from_uid, to_uid


@pytest.mark.parametrize(
    ("typed", "order", "fmt", "uid"),
    [
        ("3283263748", "le", "auto", "04A1B2C3"),  # 0xC3B2A104 little-endian
        ("0077705923", "be", "auto", "04A1B2C3"),  # 0x04A1B2C3 big-endian
        ("C3B2A104", "le", "auto", "04A1B2C3"),
        ("04a1b2c3", "be", "hex", "04A1B2C3"),
        ("17841284", "be", "w26", "00B2A144"),  # facility 178 = 0xB2, number 41284 = 0xA144
        ("04112233445566", "be", "auto", "04112233445566"),
        ("66554433221104", "le", "auto", "04112233445566"),
    ],
)
def test_formats(typed: str, order: str, fmt: str, uid: str) -> None:
    assert to_uid(typed, order, fmt) == uid


@pytest.mark.parametrize("uid", ["04A1B2C3", "FFFFFFFF", "00000001"])
@pytest.mark.parametrize("order", ["le", "be"])
@pytest.mark.parametrize("fmt", ["dec10", "hex"])
def test_round_trip(uid: str, order: str, fmt: str) -> None:
    assert to_uid(from_uid(uid, order, fmt), order, fmt) == uid


@pytest.mark.parametrize(
    ("typed", "fmt"),
    [
        ("12345", "auto"),
        ("9999999999", "auto"),
        ("12G45678", "auto"),
        ("", "auto"),
        ("99912345", "w26"),
        ("C3B2A104", "dec10"),
        ("3283263748", "hex"),
    ],
)
def test_rejected(typed: str, fmt: str) -> None:
    with pytest.raises(BadCardNumber):
        to_uid(typed, "le", fmt)


def test_spec() -> None:
    assert parse_spec("hid:/dev/input/by-id/x-event-kbd?order=be&format=w26") == (
        "/dev/input/by-id/x-event-kbd",
        "be",
        "w26",
    )
    assert parse_spec("hid:/dev/input/event3") == ("/dev/input/event3", "le", "auto")
    with pytest.raises(UnknownReaderSpec):
        parse_spec("hid:/dev/input/event3?order=middle")
    with pytest.raises(UnknownReaderSpec):
        open_reader("nfc:/dev/foo")


def test_partial_and_slow_input_rejected_then_good_read_accepted() -> None:
    wedge = WedgeReaderSim(repeat_every=None)
    reader = HidReader("hid:/dev/input/sim", open_device=wedge.open, key_gap=0.05)
    try:
        assert reader.poll(0.05) is None
        wedge.type_text("32832", interval=0.0)
        time.sleep(0.1)  # the reader "stalls" mid-number: more than key_gap
        wedge.type_text("63748", interval=0.0)  # rest of it, alone: 5 digits, rejected too
        wedge.type_text("3283263748")
        assert reader.poll(1.0) == "04A1B2C3"
        assert reader.poll(0.2) is None
        assert reader.rejected == 2
    finally:
        reader.close()
        wedge.close()


def test_device_is_grabbed_exclusively() -> None:
    wedge = WedgeReaderSim()
    reader = HidReader("hid:/dev/input/sim", open_device=wedge.open)
    try:
        reader.poll(0.05)
        assert wedge._device is not None and wedge._device.grabbed
    finally:
        reader.close()
        wedge.close()
