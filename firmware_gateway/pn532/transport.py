"""HSU (high-speed UART) transport to a PN532: wakeup, command/ACK/response exchange, abort."""

from __future__ import annotations

import contextlib
import logging
import os
import select
import termios
import time
from typing import Protocol

from firmware_gateway.clock import Monotonic
from firmware_gateway.pn532 import frames
from firmware_gateway.pn532.errors import FrameError, NoAck, PortError, ResponseTimeout

log = logging.getLogger(__name__)

# After power-on, and after PowerDown/LowVbat, the PN532's HSU sleeps. It wakes on a falling edge
# on RX and needs ~2 ms before it can decode a frame, so the host sends 0x55 0x55 (a long run of
# edges) then zeros to fill that time (UM0701-02 §7.2.11; libnfc sends exactly these 16 bytes).
WAKEUP = b"\x55\x55" + b"\x00" * 14

# The chip ACKs within ~1 ms of a complete command at 115200 bd; 100 ms leaves room for a loaded
# Pi and a USB-serial adapter's latency timer (16 ms on FTDI by default).
ACK_TIMEOUT_S = 0.1


class Port(Protocol):
    """The part of pyserial's Serial the transport uses."""

    def fileno(self) -> int: ...

    def write(self, data: bytes, /) -> int | None: ...

    def flush(self) -> None: ...

    def reset_input_buffer(self) -> None: ...

    def close(self) -> None: ...


def open_serial(path: str, baudrate: int = 115200) -> Port:
    """Open a UART with pyserial, 8N1, raw; translates failure to PortError."""
    import serial

    try:
        # exclusive: a second process (e.g. a stray nfc-list) on the same UART corrupts frames.
        port: Port = serial.Serial(path, baudrate=baudrate, timeout=0, exclusive=True)
    except (serial.SerialException, OSError, ValueError) as exc:
        raise PortError(f"cannot open {path}: {exc}") from exc
    return port


class HsuTransport:
    """Frames over a serial port; one command in flight at a time."""

    def __init__(self, port: Port, monotonic: Monotonic = time.monotonic) -> None:
        self.port = port
        self._monotonic = monotonic
        self._decoder = frames.FrameDecoder()
        self.frame_errors = 0

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.port.close()

    def write(self, data: bytes) -> None:
        try:
            self.port.write(data)
            self.port.flush()
        # pyserial's SerialException is an OSError; tcdrain on a vanished tty raises termios.error
        except (OSError, termios.error) as exc:
            raise PortError(f"write failed: {exc}") from exc

    def wakeup(self) -> None:
        """Send the HSU wakeup preamble; the next frame must follow without a long pause."""
        self.write(WAKEUP)

    def discard_input(self) -> None:
        """Drop stale bytes (a late response to an aborted command) before a new command."""
        self._decoder.clear()
        try:
            self.port.reset_input_buffer()
        except (OSError, termios.error) as exc:
            raise PortError(f"reset failed: {exc}") from exc

    def send_command(self, data: bytes, ack_timeout: float = ACK_TIMEOUT_S) -> None:
        """Write one command frame and wait for its ACK; raises NoAck if none comes."""
        self.discard_input()
        self.write(frames.encode_command(data))
        deadline = self._monotonic() + ack_timeout
        while True:
            frame = self._read_frame(deadline)
            if frame is None:
                raise NoAck(f"no ACK to command {data[:1].hex()} within {ack_timeout:.3f} s")
            if frame.kind is frames.Kind.ACK:
                return
            if frame.kind is frames.Kind.NACK:
                raise FrameError("chip NACKed the command frame (line noise?)")
            # Anything else here is a leftover from an earlier, aborted command.
            log.debug("ignoring %s frame while waiting for ACK", frame.kind.value)

    def read_response(self, timeout: float) -> frames.Frame:
        """The response frame to the command just acknowledged; ResponseTimeout if none."""
        deadline = self._monotonic() + timeout
        while True:
            frame = self._read_frame(deadline)
            if frame is None:
                raise ResponseTimeout(f"no response within {timeout:.3f} s")
            if frame.kind is frames.Kind.INFO or frame.kind is frames.Kind.ERROR:
                return frame
            log.debug("ignoring %s frame while waiting for a response", frame.kind.value)

    def request_resend(self) -> None:
        """Ask the chip to send its last response again (host NACK, UM0701-02 §6.2.1.4)."""
        self.discard_input()
        self.write(frames.NACK)

    def abort(self) -> None:
        """Cancel the command in progress: the PN532 treats an ACK from the host as abort."""
        self.write(frames.ACK)

    def _read_frame(self, deadline: float) -> frames.Frame | None:
        while True:
            frame = self._decoder.next_frame()
            if self._decoder.errors:
                self.frame_errors += len(self._decoder.errors)
                for err in self._decoder.errors:
                    log.warning("PN532 frame error: %s", err)
                self._decoder.errors.clear()
                raise FrameError("garbled frame from the PN532")
            if frame is not None:
                return frame
            remaining = deadline - self._monotonic()
            if remaining <= 0:
                return None
            self._decoder.feed(self._read_some(remaining))

    def _read_some(self, timeout: float) -> bytes:
        fd = self.port.fileno()
        try:
            ready, _, _ = select.select([fd], [], [], timeout)
            if not ready:
                return b""
            data = os.read(fd, 512)
        except OSError as exc:
            raise PortError(f"read failed: {exc}") from exc
        if not data:
            # Readable but empty: the tty is gone (USB-serial adapter unplugged).
            raise PortError("serial port closed (device unplugged?)")
        return data
