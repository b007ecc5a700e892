"""PN532 host-link framing (UM0701-02 §6.2.1): information, extended, ACK, NACK and error frames.

Normal information frame::

    00 | 00 FF | LEN | LCS | TFI | PD0 .. PDn | DCS | 00
    LEN = number of bytes in TFI + PD; LEN + LCS = 0 (mod 256); TFI + sum(PD) + DCS = 0 (mod 256)

Extended information frame (up to 265 data bytes)::

    00 | 00 FF | FF FF | LENM LENL | LCS | TFI | PD0 .. PDn | DCS | 00

ACK is ``00 00 FF 00 FF 00``, NACK is ``00 00 FF FF 00 00``, the application-level error frame is
``00 00 FF 01 FF 7F 81 00``. TFI is D4 host→PN532 and D5 PN532→host.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from firmware_gateway.pn532.errors import FrameError

HOST_TO_PN532 = 0xD4
PN532_TO_HOST = 0xD5

PREAMBLE = b"\x00"
START = b"\x00\xff"
POSTAMBLE = b"\x00"
ACK = b"\x00\x00\xff\x00\xff\x00"
NACK = b"\x00\x00\xff\xff\x00\x00"
ERROR = b"\x00\x00\xff\x01\xff\x7f\x81\x00"

# Normal frames carry at most 255 bytes of TFI + data; longer ones need the extended form.
MAX_NORMAL_LEN = 255
MAX_EXTENDED_LEN = 266  # TFI + 265 data bytes, the most the PN532's buffer holds


class Kind(Enum):
    INFO = "info"
    ACK = "ack"
    NACK = "nack"
    ERROR = "error"


@dataclass(frozen=True)
class Frame:
    """One decoded frame: its kind and, for information frames, TFI and data."""

    kind: Kind
    tfi: int = 0
    data: bytes = b""

    @property
    def command(self) -> int:
        """The command (or response) code: the first data byte of an information frame."""
        if self.kind is not Kind.INFO or not self.data:
            raise FrameError(f"{self.kind.value} frame has no command code")
        return self.data[0]


def checksum(data: bytes) -> int:
    """The byte that makes `data` plus it sum to zero modulo 256 (LCS and DCS)."""
    return (-sum(data)) & 0xFF


def encode(tfi: int, data: bytes) -> bytes:
    """An information frame: normal form when it fits, extended form otherwise."""
    body = bytes([tfi]) + bytes(data)
    n = len(body)
    if n > MAX_EXTENDED_LEN:
        raise FrameError(f"frame of {n} bytes exceeds the PN532's {MAX_EXTENDED_LEN}")
    if n <= MAX_NORMAL_LEN:
        head = bytes([n, checksum(bytes([n]))])
    else:
        lenm, lenl = n >> 8, n & 0xFF
        head = bytes([0xFF, 0xFF, lenm, lenl, checksum(bytes([lenm, lenl]))])
    return PREAMBLE + START + head + body + bytes([checksum(body)]) + POSTAMBLE


def encode_command(data: bytes) -> bytes:
    """A host → PN532 information frame (TFI D4)."""
    return encode(HOST_TO_PN532, data)


def encode_response(data: bytes) -> bytes:
    """A PN532 → host information frame (TFI D5)."""
    return encode(PN532_TO_HOST, data)


def decode(raw: bytes) -> Frame:
    """Exactly one frame, checksums verified; raises FrameError otherwise."""
    decoder = FrameDecoder()
    decoder.feed(raw)
    frame = decoder.next_frame()
    if frame is None:
        raise FrameError(f"incomplete frame: {raw.hex(' ')}")
    if decoder.errors:
        raise FrameError(decoder.errors[0])
    if decoder.buffered.strip(b"\x00"):
        raise FrameError(f"trailing bytes after frame: {decoder.buffered.hex(' ')}")
    return frame


class FrameDecoder:
    """Streaming decoder: feed bytes as they arrive, take frames out; resyncs after garbage.

    Bytes before a start code (00 FF) are skipped, so the 0x55 wakeup preamble, line noise and
    leading zeros cost nothing. A frame with a bad LCS is abandoned at its start code; one with a
    bad DCS or missing postamble is dropped whole. Each is noted in `errors` so the caller
    can count it (the transport NACKs or aborts).
    """

    def __init__(self) -> None:
        self._buf = bytearray()
        self.errors: list[str] = []

    @property
    def buffered(self) -> bytes:
        return bytes(self._buf)

    def feed(self, data: bytes) -> None:
        self._buf += data

    def clear(self) -> None:
        self._buf.clear()

    def next_frame(self) -> Frame | None:
        """The next complete valid frame, or None until more bytes arrive."""
        while True:
            start = self._buf.find(START)
            if start < 0:
                # Keep a trailing 00: it may be the first half of a start code.
                keep = 1 if self._buf.endswith(b"\x00") else 0
                del self._buf[: len(self._buf) - keep]
                return None
            del self._buf[:start]
            result = self._try_frame()
            if result is _NEED_MORE:
                return None
            if result is _RESYNC:
                del self._buf[:2]  # skip this start code and look for the next one
                continue
            if result is _RESYNC_DONE:
                continue
            assert isinstance(result, Frame)
            return result

    def _try_frame(self) -> Frame | object:
        b = self._buf
        if len(b) < 4:
            return _NEED_MORE
        len_byte, lcs = b[2], b[3]
        if len_byte == 0x00 and lcs == 0xFF:
            return self._take(5, Frame(Kind.ACK), postamble_at=4)
        if len_byte == 0xFF and lcs == 0x00:
            return self._take(5, Frame(Kind.NACK), postamble_at=4)
        if len_byte == 0xFF and lcs == 0xFF:
            if len(b) < 7:
                return _NEED_MORE
            lenm, lenl, elcs = b[4], b[5], b[6]
            if (lenm + lenl + elcs) & 0xFF:
                self.errors.append(f"bad extended LCS {elcs:02x} for {lenm:02x}{lenl:02x}")
                return _RESYNC
            return self._info(body_at=7, n=(lenm << 8) | lenl)
        if (len_byte + lcs) & 0xFF:
            self.errors.append(f"bad LCS {lcs:02x} for LEN {len_byte:02x}")
            return _RESYNC
        if len_byte == 0:
            self.errors.append("information frame with LEN 0")
            return _RESYNC
        return self._info(body_at=4, n=len_byte)

    def _info(self, body_at: int, n: int) -> Frame | object:
        b = self._buf
        end = body_at + n + 2  # body, DCS, postamble
        if len(b) < end:
            return _NEED_MORE
        body = bytes(b[body_at : body_at + n])
        dcs = b[body_at + n]
        if (sum(body) + dcs) & 0xFF:
            self.errors.append(f"bad DCS {dcs:02x} in frame {bytes(b[:end]).hex(' ')}")
            del b[:end]
            return _RESYNC_DONE
        if body == b"\x7f" and body_at == 4:
            frame = Frame(Kind.ERROR)
        else:
            frame = Frame(Kind.INFO, tfi=body[0], data=body[1:])
        return self._take(end, frame, postamble_at=end - 1)

    def _take(self, n: int, frame: Frame, postamble_at: int) -> Frame | object:
        b = self._buf
        if len(b) < n:
            return _NEED_MORE
        if b[postamble_at] != 0x00:
            # A real PN532 always sends the postamble; a missing one means a torn frame.
            self.errors.append(f"missing postamble in {bytes(b[:n]).hex(' ')}")
            del b[:n]
            return _RESYNC_DONE
        del b[:n]
        return frame


class _Marker:
    def __init__(self, name: str) -> None:
        self.name = name


_NEED_MORE = _Marker("need more")
_RESYNC = _Marker("resync")
_RESYNC_DONE = _Marker("resync, bytes already dropped")
