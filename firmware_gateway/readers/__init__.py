"""Reader drivers, chosen by a device string: `sim:`, `pn532:/dev/serial0`, `libnfc:<connstring>`,
`hid:/dev/input/by-id/...`."""

from __future__ import annotations

from collections.abc import Callable

from firmware_gateway.errors import UnknownReaderSpec
from firmware_gateway.readers.base import Reader
from warmcard.contract import ReaderState

SCHEMES = ("sim", "pn532", "libnfc", "hid")


def open_reader(spec: str) -> Reader:
    """Open the driver a device string names; the import is lazy so a Pi loads only its own."""
    scheme, _, _target = spec.partition(":")
    if scheme == "sim":
        from firmware_gateway.readers.sim import SimReader

        return SimReader(spec)
    if scheme == "pn532":
        from firmware_gateway.readers.pn532 import PN532Reader

        return PN532Reader(spec)
    if scheme == "libnfc":
        from firmware_gateway.readers.libnfc import LibnfcReader

        return LibnfcReader(spec)
    if scheme == "hid":
        from firmware_gateway.readers.hid import HidReader

        return HidReader(spec)
    raise UnknownReaderSpec(
        f"reader {spec!r}: unknown driver {scheme!r}; use one of "
        + ", ".join(f"{s}:" for s in SCHEMES)
    )


def read_taps(
    reader: Reader,
    count: int,
    on_uid: Callable[[str], None],
    on_state: Callable[[ReaderState], None],
) -> None:
    """Report each tap's UID and each change of the reader's state; `count` 0: until Ctrl-C."""
    seen, last_state = 0, None
    try:
        while count == 0 or seen < count:
            uid = reader.poll(0.5)
            if reader.state != last_state:
                last_state = reader.state
                on_state(reader.state)
            if uid is not None:
                seen += 1
                on_uid(uid)
    except KeyboardInterrupt:
        pass


__all__ = ["SCHEMES", "Reader", "open_reader", "read_taps"]
