"""A PN532 on a pseudo-terminal, speaking the real HSU protocol: shipped, for tests and technicians.

Open the slave path (`emulator.path`) with any PN532 HSU host: Warmcard's `pn532:` driver,
libnfc's `pn532_uart` driver (`libnfc:pn532_uart:<path>:115200`), nfcpy (`tty:...:pn532`).
Drive the "card field" from code with `present(uid)` / `remove()`, and inject faults with
`garble_next()`, `go_silent()` and `come_back()`.

What it models (UM0701-02 and what libnfc 1.8 relies on):
- power-on in LowVbat: every byte is ignored until the host sends the 0x55 wakeup preamble;
  PowerDown puts it back to sleep;
- ACK for every well-formed command, then the response; host ACK aborts, host NACK resends;
- an error frame for commands it does not know;
- InListPassiveTarget waits (MaxRetries 0xFF) until a card arrives, or answers "no target" after
  the configured number of retries; ISO14443A 106 kbps targets only;
- bytes are paced at the configured baud rate, so latency figures match a real UART.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import threading
import time
import tty
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from firmware_gateway.pn532 import device as cmd
from firmware_gateway.pn532 import frames

log = logging.getLogger(__name__)

FIRMWARE = bytes([0x32, 0x01, 0x06, 0x07])  # IC PN532, firmware 1.6, supports ISO14443A/B + 18092
# One passive activation attempt (REQA, anticollision, SELECT) takes a few ms on air.
ACTIVATION_S = 0.003
RETRY_PERIOD_S = 0.003

# InDataExchange/InCommunicateThru status byte: 0x01 = the target did not answer (timeout);
# 0x27 = wrong context (no such target selected).
STATUS_OK = 0x00
STATUS_TIMEOUT = 0x01
STATUS_WRONG_CONTEXT = 0x27


@dataclass(frozen=True)
class Card:
    """An ISO14443A card in the field."""

    uid: bytes
    sens_res: bytes
    sel_res: int

    @classmethod
    def from_uid(cls, uid: str) -> Card:
        raw = bytes.fromhex(uid)
        if len(raw) not in (4, 7, 10):
            raise ValueError(f"UID must be 4, 7 or 10 bytes, not {len(raw)}: {uid!r}")
        # Typical ATQA/SAK: MIFARE Classic 1K (4-byte), Ultralight/NTAG (7-byte), and a
        # triple-size UID Classic; bits 7-6 of ATQA byte 2 give the UID size.
        sens_res, sel_res = {
            4: (b"\x00\x04", 0x08),
            7: (b"\x00\x44", 0x00),
            10: (b"\x00\x84", 0x08),
        }[len(raw)]
        return cls(raw, sens_res, sel_res)


@dataclass
class _Pending:
    """An InListPassiveTarget the chip is still working on."""

    give_up_at: float | None  # None: MaxRetries 0xFF, wait for a card forever
    answer_at: float | None = None  # set once a card is in the field


class PN532Emulator:
    """An emulated PN532 on a pty. Start it, hand `path` to a driver, then present cards."""

    def __init__(self, baudrate: int = 115200, firmware: bytes = FIRMWARE) -> None:
        self.baudrate = baudrate
        self.firmware = firmware
        self._master, self._slave = os.openpty()
        # Raw mode before any host opens it: no echo, no CR/LF mangling of binary frames.
        tty.setraw(self._slave)
        self.path = os.ttyname(self._slave)
        self._wake_r, self._wake_w = os.pipe()
        self._lock = threading.Lock()
        self._decoder = frames.FrameDecoder()
        self._card: Card | None = None
        self._garble = False
        self._silent = False
        self._closed = False
        self._pending: _Pending | None = None
        self.commands: list[int] = []  # command codes received, in order (for tests and logs)
        self._power_on()
        self._thread = threading.Thread(
            target=self._run, name=f"pn532-emu {self.path}", daemon=True
        )

    # ---- lifecycle -------------------------------------------------------------------------

    def start(self) -> PN532Emulator:
        self._thread.start()
        return self

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._poke()
        if self._thread.is_alive():
            self._thread.join(2)
        for fd in (self._master, self._slave, self._wake_r, self._wake_w):
            with contextlib.suppress(OSError):
                os.close(fd)

    def __enter__(self) -> PN532Emulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- the field and faults --------------------------------------------------------------

    def present(self, uid: str) -> None:
        """A card with this UID (hex, 4/7/10 bytes) enters the field and stays there."""
        card = Card.from_uid(uid)
        with self._lock:
            self._card = card
        self._poke()

    def remove(self) -> None:
        """The card leaves the field."""
        with self._lock:
            self._card = None
            self._selected = False
        self._poke()

    def garble_next(self) -> None:
        """Send the next response frame with a wrong data checksum (line noise)."""
        with self._lock:
            self._garble = True

    def go_silent(self) -> None:
        """Stop answering anything, as an unpowered or wedged chip does."""
        with self._lock:
            self._silent = True
            self._pending = None

    def come_back(self, power_cycled: bool = True) -> None:
        """Answer again; after a power cycle the chip is back in LowVbat and needs a wakeup."""
        with self._lock:
            self._silent = False
            if power_cycled:
                self._power_on()
        self._poke()

    @property
    def card(self) -> Card | None:
        return self._card

    # ---- internals -------------------------------------------------------------------------

    def _power_on(self) -> None:
        self._asleep = True  # the PN532 powers up in LowVbat mode
        self._pending = None
        self._selected = False
        self._field = False
        self._max_retries_passive = 0xFF
        self._registers: dict[int, int] = {}
        self._initiator_data = b""
        self._last_response: bytes | None = None
        self._decoder.clear()

    def _poke(self) -> None:
        with contextlib.suppress(OSError):
            os.write(self._wake_w, b"x")

    def _run(self) -> None:
        while not self._closed:
            with self._lock:
                timeout = self._next_timer()
            try:
                ready, _, _ = select.select([self._master, self._wake_r], [], [], timeout)
            except (OSError, ValueError):
                return
            if self._closed:
                return
            if self._wake_r in ready:
                os.read(self._wake_r, 512)
            if self._master in ready:
                try:
                    data = os.read(self._master, 4096)
                except OSError:
                    return
                with self._lock:
                    self._receive(data)
            with self._lock:
                self._service_pending()

    def _next_timer(self) -> float | None:
        p = self._pending
        if p is None or self._silent:
            return None
        if self._card is not None and p.answer_at is None:
            return 0
        times = [t for t in (p.give_up_at, p.answer_at) if t is not None]
        return max(0.0, min(times) - time.monotonic()) if times else None

    def _receive(self, data: bytes) -> None:
        if self._silent:
            return
        if self._asleep:
            # HSU wakeup: the chip wakes on the 0x55 preamble's edges; bytes before it are lost.
            idx = data.find(b"\x55")
            if idx < 0:
                return
            self._asleep = False
            self._decoder.clear()
            data = data[idx:]
        self._decoder.feed(data)
        while not self._asleep:
            frame = self._decoder.next_frame()
            if self._decoder.errors:
                # The real chip stays silent on a corrupt host frame; the host times out on ACK.
                log.debug("emulator: bad host frame: %s", self._decoder.errors)
                self._decoder.errors.clear()
            if frame is None:
                return
            self._on_frame(frame)

    def _on_frame(self, frame: frames.Frame) -> None:
        if frame.kind is frames.Kind.ACK:
            self._pending = None  # host abort of the command in progress
            return
        if frame.kind is frames.Kind.NACK:
            if self._last_response is not None:
                self._send(self._last_response)
            return
        if (
            frame.kind is not frames.Kind.INFO
            or frame.tfi != frames.HOST_TO_PN532
            or not frame.data
        ):
            self._send(frames.ERROR)
            return
        self._send(frames.ACK)
        self._pending = None  # a new command replaces one in progress
        code, params = frame.data[0], frame.data[1:]
        self.commands.append(code)
        reply = self._execute(code, params)
        if reply is not None:
            self._respond(code, reply)

    def _respond(self, code: int, data: bytes) -> None:
        raw = frames.encode_response(bytes([code + 1]) + data)
        self._last_response = raw
        if self._garble:
            self._garble = False
            raw = raw[:-2] + bytes([raw[-2] ^ 0x5A]) + raw[-1:]
        self._send(raw)

    def _send(self, raw: bytes) -> None:
        # Pace at the UART's rate: 10 bits a byte (8N1).
        time.sleep(len(raw) * 10 / self.baudrate)
        with contextlib.suppress(OSError):
            os.write(self._master, raw)

    def _execute(self, code: int, p: bytes) -> bytes | None:
        if code == cmd.DIAGNOSE:
            # Test 0x00 (communication line): echo the parameters, NumTst included. libnfc's
            # pn532_uart driver sends "00 'libnfc'" at open and compares the echo byte for byte.
            return p if p[:1] == b"\x00" else b"\x00"
        if code == cmd.GET_FIRMWARE_VERSION:
            return self.firmware
        if code == cmd.GET_GENERAL_STATUS:
            field = 0x01 if self._field else 0x00
            if self._selected and self._card is not None:
                return bytes([0x00, field, 0x01, 0x01, 0x00, 0x00, 0x00, 0x00])
            return bytes([0x00, field, 0x00, 0x00])
        if code == cmd.READ_REGISTER:
            addrs = [(p[i] << 8) | p[i + 1] for i in range(0, len(p) - 1, 2)]
            return bytes(self._registers.get(a, 0x00) for a in addrs)
        if code == cmd.WRITE_REGISTER:
            for i in range(0, len(p) - 2, 3):
                self._registers[(p[i] << 8) | p[i + 1]] = p[i + 2]
            return b""
        if code in (cmd.SET_PARAMETERS, cmd.SAM_CONFIGURATION):
            return b""
        if code == 0x0C:  # ReadGPIO: P3, P7, I0I1
            return b"\x3f\x07\x00"
        if code == 0x0E:  # WriteGPIO
            return b""
        if code == cmd.POWER_DOWN:
            self._respond(code, b"\x00")
            self._asleep = True
            self._field = False
            self._selected = False
            return None
        if code == cmd.RF_CONFIGURATION:
            return self._rf_configuration(p)
        if code == cmd.IN_LIST_PASSIVE_TARGET:
            return self._in_list_passive_target(p)
        if code in (cmd.IN_RELEASE, cmd.IN_DESELECT):
            self._selected = False
            return bytes([STATUS_OK])
        if code == cmd.IN_SELECT:
            if self._card is None:
                return bytes([STATUS_TIMEOUT])
            self._selected = True
            return bytes([STATUS_OK])
        if code in (cmd.IN_DATA_EXCHANGE, cmd.IN_COMMUNICATE_THRU):
            return self._exchange(code, p)
        # Unknown command: the PN532 answers with the application-level error frame.
        self._send(frames.ERROR)
        return None

    def _rf_configuration(self, p: bytes) -> bytes | None:
        if not p:
            self._send(frames.ERROR)
            return None
        item = p[0]
        if item == cmd.RF_ITEM_FIELD and len(p) >= 2:
            self._field = bool(p[1] & 0x01)
            if not self._field:
                self._selected = False  # cards lose power and reset
        elif item == cmd.RF_ITEM_MAX_RETRIES and len(p) >= 4:
            self._max_retries_passive = p[3]
        return b""

    def _in_list_passive_target(self, p: bytes) -> bytes | None:
        if len(p) < 2 or p[0] not in (1, 2):
            self._send(frames.ERROR)
            return None
        self._field = True
        if p[1] != cmd.BRTY_106A:
            return b"\x00"  # only type A cards live in this field
        now = time.monotonic()
        retries = self._max_retries_passive
        give_up = None if retries == 0xFF else now + (retries + 1) * RETRY_PERIOD_S
        self._pending = _Pending(give_up_at=give_up)
        self._initiator_data = bytes(p[2:])
        self._service_pending()
        return None

    def _service_pending(self) -> None:
        p = self._pending
        if p is None or self._silent or self._asleep:
            return
        now = time.monotonic()
        card = self._card
        if card is not None and self._initiator_data and card.uid != self._initiator_data:
            card = None  # InitiatorData asks for one particular UID
        if card is not None:
            if p.answer_at is None:
                p.answer_at = now + ACTIVATION_S
            if now >= p.answer_at:
                self._pending = None
                self._selected = True
                body = bytes([0x01, 0x01]) + card.sens_res + bytes([card.sel_res, len(card.uid)])
                self._respond(cmd.IN_LIST_PASSIVE_TARGET, body + card.uid)
            return
        p.answer_at = None
        if p.give_up_at is not None and now >= p.give_up_at:
            self._pending = None
            self._respond(cmd.IN_LIST_PASSIVE_TARGET, b"\x00")

    def _exchange(self, code: int, p: bytes) -> bytes:
        if code == cmd.IN_DATA_EXCHANGE and not p:
            return bytes([STATUS_WRONG_CONTEXT])
        # Only the selected type A card answers; libnfc's ISO14443B/B'/ST SRx/Innovision probes
        # go out through InCommunicateThru and must time out (status 0x01), as on a real field.
        if self._card is None or not self._selected:
            return bytes(
                [STATUS_TIMEOUT if code == cmd.IN_COMMUNICATE_THRU else STATUS_WRONG_CONTEXT]
            )
        payload = p[1:] if code == cmd.IN_DATA_EXCHANGE else p
        if payload[:1] == b"\x30" and len(payload) >= 2:  # READ: 16 bytes (4 pages / 1 block)
            return bytes([STATUS_OK]) + (self._card.uid + bytes(16))[:16]
        if payload[:1] in (b"\x60", b"\x61"):  # MIFARE Classic AUTH A/B: accepted
            return bytes([STATUS_OK])
        return bytes([STATUS_TIMEOUT])


CONSOLE_HELP = (
    "命令 Commands: present <UID> | remove | garble | silent | back | quit\n"
    "  present 04A1B2C3   放卡 card on the reader\n"
    "  remove             拿开 card off the reader\n"
    "  garble             下一帧出错 next response garbled\n"
    "  silent / back      读卡器无响应 / 恢复 reader stops answering / comes back"
)


def run_console(emulator: PN532Emulator, lines: Iterable[str], say: Callable[[str], None]) -> None:
    """Drive the emulator from text commands (CONSOLE_HELP), one a line, until `quit` or EOF."""
    for line in lines:
        words = line.split()
        if not words:
            continue
        verb = words[0].lower()
        try:
            if verb == "present" and len(words) == 2:
                emulator.present(words[1])
            elif verb == "remove":
                emulator.remove()
            elif verb == "garble":
                emulator.garble_next()
            elif verb == "silent":
                emulator.go_silent()
            elif verb == "back":
                emulator.come_back()
            elif verb in ("quit", "exit"):
                break
            else:
                say(CONSOLE_HELP)
                continue
        except ValueError as exc:
            say(f"卡号无效 Bad UID: {exc}")
            continue
        say("好 OK")
