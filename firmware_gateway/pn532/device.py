"""PN532 device API: the commands a UID reader needs, over an HsuTransport."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from firmware_gateway.pn532 import frames
from firmware_gateway.pn532.errors import ChipError, FrameError, ResponseTimeout
from firmware_gateway.pn532.transport import HsuTransport

log = logging.getLogger(__name__)

# Command codes (UM0701-02 §7); the response code is the command code + 1.
DIAGNOSE = 0x00
GET_FIRMWARE_VERSION = 0x02
GET_GENERAL_STATUS = 0x04
READ_REGISTER = 0x06
WRITE_REGISTER = 0x08
SET_PARAMETERS = 0x12
SAM_CONFIGURATION = 0x14
POWER_DOWN = 0x16
RF_CONFIGURATION = 0x32
IN_DATA_EXCHANGE = 0x40
IN_COMMUNICATE_THRU = 0x42
IN_DESELECT = 0x44
IN_LIST_PASSIVE_TARGET = 0x4A
IN_RELEASE = 0x52
IN_SELECT = 0x54

# RFConfiguration items
RF_ITEM_FIELD = 0x01
RF_ITEM_MAX_RETRIES = 0x05

BRTY_106A = 0x00  # InListPassiveTarget baud rate / modulation: 106 kbps type A (ISO14443A)
PN532_IC = 0x32
RETRY_FOREVER = 0xFF

COMMAND_TIMEOUT_S = 0.5


@dataclass(frozen=True)
class FirmwareVersion:
    ic: int
    version: int
    revision: int
    support: int

    def __str__(self) -> str:
        return f"PN5{self.ic:02x} v{self.version}.{self.revision} (support {self.support:#04x})"


@dataclass(frozen=True)
class TargetA:
    """An ISO14443A target as InListPassiveTarget reports it."""

    tg: int
    sens_res: bytes  # ATQA, 2 bytes, as sent on air (PN532 order: MSB first)
    sel_res: int  # SAK
    nfcid1: bytes  # UID: 4, 7 or 10 bytes
    ats: bytes = b""

    @property
    def uid(self) -> str:
        return self.nfcid1.hex().upper()


def parse_list_passive_106a(data: bytes) -> list[TargetA]:
    """Parse InListPassiveTarget's response data (after D5 4B) for 106 kbps type A."""
    if not data:
        raise FrameError("empty InListPassiveTarget response")
    count, pos, targets = data[0], 1, []
    for _ in range(count):
        if len(data) < pos + 5:
            raise FrameError(f"short InListPassiveTarget response: {data.hex(' ')}")
        tg, sens_res, sel_res, uid_len = (
            data[pos],
            data[pos + 1 : pos + 3],
            data[pos + 3],
            data[pos + 4],
        )
        pos += 5
        if uid_len not in (4, 7, 10) or len(data) < pos + uid_len:
            raise FrameError(f"bad NFCID1 length {uid_len} in {data.hex(' ')}")
        uid = data[pos : pos + uid_len]
        pos += uid_len
        ats = b""
        # SEL_RES bit 6 (0x20): the target is ISO14443-4 compliant and the PN532 has already sent
        # RATS, so an ATS (length byte first, the length counting itself) follows the NFCID1.
        if sel_res & 0x20 and len(data) > pos:
            ats_len = data[pos]
            ats = data[pos + 1 : pos + ats_len]
            pos += max(ats_len, 1)
        targets.append(TargetA(tg, bytes(sens_res), sel_res, bytes(uid), bytes(ats)))
    return targets


class PN532:
    """Commands of a PN532 in initiator (reader) mode."""

    def __init__(self, transport: HsuTransport) -> None:
        self.transport = transport

    def command(self, code: int, params: bytes = b"", timeout: float = COMMAND_TIMEOUT_S) -> bytes:
        """Send a command, wait for ACK and response; return the response data after its code."""
        t = self.transport
        t.send_command(bytes([code]) + params)
        try:
            frame = t.read_response(timeout)
        except FrameError:
            # A torn or noisy response: the host may NACK and the PN532 sends it again.
            t.request_resend()
            frame = t.read_response(timeout)
        return self._check(code, frame)

    @staticmethod
    def _check(code: int, frame: frames.Frame) -> bytes:
        if frame.kind is frames.Kind.ERROR:
            raise ChipError(f"PN532 syntax error frame in reply to command {code:#04x}")
        if frame.tfi != frames.PN532_TO_HOST or not frame.data or frame.data[0] != code + 1:
            raise FrameError(
                f"unexpected reply {frame.tfi:02x} {frame.data.hex(' ')} to {code:#04x}"
            )
        return frame.data[1:]

    def wakeup(self) -> None:
        """Wake the HSU from power-down/LowVbat; SAMConfiguration must be the next command."""
        self.transport.wakeup()

    def sam_configuration(self) -> None:
        """Normal mode (no SAM). Also what takes the chip out of LowVbat after power-on."""
        # Mode 0x01 normal; timeout 0x14 (1 s, used only in virtual-card mode); IRQ pin used.
        self.command(SAM_CONFIGURATION, b"\x01\x14\x01")

    def get_firmware_version(self) -> FirmwareVersion:
        data = self.command(GET_FIRMWARE_VERSION)
        if len(data) != 4:
            raise FrameError(f"GetFirmwareVersion: expected 4 bytes, got {data.hex(' ')}")
        return FirmwareVersion(*data)

    def set_max_retries(
        self, atr: int = 0xFF, psl: int = 0x01, passive: int = RETRY_FOREVER
    ) -> None:
        """RFConfiguration item 5: how often the chip retries activation before giving up."""
        self.command(RF_CONFIGURATION, bytes([RF_ITEM_MAX_RETRIES, atr, psl, passive]))

    def rf_field(self, on: bool) -> None:
        """RFConfiguration item 1; off also resets every card in the field (they lose power)."""
        # bit 1 AutoRFCA stays 0: no other NFC initiator shares this field.
        self.command(RF_CONFIGURATION, bytes([RF_ITEM_FIELD, 0x01 if on else 0x00]))

    def list_passive_106a(self, wait: float) -> TargetA | None:
        """InListPassiveTarget for one ISO14443A target; None if none came within `wait` s.

        With MaxRetries passive = 0xFF the chip itself keeps looking and answers the moment a
        card arrives, so the host just blocks on the UART. When `wait` runs out the host aborts
        the command with an ACK (UM0701-02 §6.2.1.3) and the chip is ready for the next one.
        """
        t = self.transport
        t.send_command(bytes([IN_LIST_PASSIVE_TARGET, 0x01, BRTY_106A]))
        try:
            frame = t.read_response(wait)
        except ResponseTimeout:
            t.abort()
            return None
        except FrameError:
            t.request_resend()
            frame = t.read_response(COMMAND_TIMEOUT_S)
        targets = parse_list_passive_106a(self._check(IN_LIST_PASSIVE_TARGET, frame))
        return targets[0] if targets else None

    def release(self, tg: int = 0) -> None:
        """InRelease: let go of target `tg` (0 = all)."""
        status = self.command(IN_RELEASE, bytes([tg]))
        if status and status[0] & 0x3F:
            raise ChipError(f"InRelease status {status[0]:#04x}")

    def power_down(self) -> None:
        """PowerDown, woken by HSU (bit 4); the next command needs `wakeup` first."""
        self.command(POWER_DOWN, b"\x10")
