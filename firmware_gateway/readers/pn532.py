"""`pn532:/dev/serial0[?baud=115200]`: a PN532 on a UART, through Warmcard's own PN532 stack.

Polling strategy (the latency / CPU trade-off):
- Waiting for a card, the chip does the waiting: MaxRetries passive activation is 0xFF, so one
  InListPassiveTarget keeps the chip polling the field on its own and it answers the instant a
  card arrives (tap latency ≈ activation + one frame at 115200 bd, a few ms). The host sleeps
  in select() on the UART, so idle CPU is near zero. Every `wait_window` s the host aborts the
  command (ACK) and reissues it: the ACK to each reissue proves the chip is still alive, so a
  dead or unplugged chip is noticed within one window. A longer window means less UART traffic
  and CPU; a shorter one means faster fault detection and shorter blocking of poll().
- While a card is held, the driver checks every `presence_interval` s whether it is still there
  (field off → on, then InListPassiveTarget with a short window). The card is "removed" after
  `removal_misses` misses in a row, so a card wobbling at the edge of the field is not counted
  twice; only then can the same card count as a new tap.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from urllib.parse import parse_qs

from firmware_gateway.clock import Monotonic
from firmware_gateway.errors import UnknownReaderSpec
from firmware_gateway.pn532.device import PN532, PN532_IC, RETRY_FOREVER
from firmware_gateway.pn532.errors import NoAck, PN532Error, PortError
from firmware_gateway.pn532.transport import HsuTransport, Port, open_serial
from firmware_gateway.readers.base import PollingReader
from warmcard.contract import ReaderState

log = logging.getLogger(__name__)

# ISO14443-3: a card resets only if the field is off for at least t_RESET (5 ms); cycling the
# field faster leaves a halted card halted and it would look "removed" while still held.
FIELD_OFF_S = 0.006
MIN_CYCLE_S = 0.05


def parse_spec(spec: str) -> tuple[str, int]:
    """`pn532:/dev/serial0?baud=115200` → ("/dev/serial0", 115200)."""
    scheme, _, rest = spec.partition(":")
    path, _, query = rest.partition("?")
    if scheme != "pn532" or not path:
        raise UnknownReaderSpec(f"reader {spec!r}: expected pn532:/dev/<uart>[?baud=115200]")
    options = parse_qs(query)
    try:
        baud = int(options.get("baud", ["115200"])[0])
    except ValueError as exc:
        raise UnknownReaderSpec(f"reader {spec!r}: baud must be a number") from exc
    return path, baud


class PN532Reader(PollingReader):
    """A PN532 over HSU: one UID per presentation; reconnects by itself."""

    def __init__(
        self,
        spec: str,
        *,
        open_port: Callable[[str, int], Port] = open_serial,
        monotonic: Monotonic = time.monotonic,
        wait_window: float = 0.5,
        presence_interval: float = 0.1,
        presence_window: float = 0.05,
        removal_misses: int = 2,
        retry_interval: float = 1.0,
    ) -> None:
        super().__init__(spec, monotonic=monotonic, retry_interval=retry_interval)
        self.path, self.baudrate = parse_spec(spec)
        self._open_port = open_port
        self.wait_window = wait_window
        self.presence_interval = presence_interval
        self.presence_window = presence_window
        self.removal_misses = removal_misses
        self._device: PN532 | None = None
        self._held: str | None = None
        self._misses = 0
        self._failures = 0
        self._next_presence_check = 0.0
        self.firmware_version: str | None = None  # what the chip reported; `warmcard doctor`

    @property
    def held(self) -> str | None:
        """The UID of the card on the reader now, if any (already reported)."""
        return self._held

    # ---- the driver's part of PollingReader -------------------------------------------------

    def _is_open(self) -> bool:
        return self._device is not None

    def _close_device(self) -> None:
        if self._device is not None:
            self._device.transport.close()
            self._device = None

    def _read(self, remaining: float) -> str | None:
        try:
            uid = self._scan(remaining)
        except PortError as exc:
            self._drop(ReaderState.ABSENT, exc)
            return None
        except PN532Error as exc:
            # One lost frame is noise; two failures in a row mean the chip is gone or wedged.
            self._failures += 1
            log.warning("PN532 on %s: %s", self.path, exc)
            if self._failures >= 2:
                self._drop(ReaderState.FAULT, exc)
            return None
        self._failures = 0
        return uid

    def _open(self) -> None:
        try:
            port = self._open_port(self.path, self.baudrate)
        except PortError as exc:
            self._fail_connect(ReaderState.ABSENT, exc)
            return
        device = PN532(HsuTransport(port, self._monotonic))
        try:
            device.wakeup()
            try:
                device.sam_configuration()
            except NoAck:
                # Quirk: if the chip was already awake and mid-frame (host restarted while it
                # was sending), the wakeup bytes land in its receive state machine and the first
                # command is lost. A second SAMConfiguration then goes through.
                device.sam_configuration()
            fw = device.get_firmware_version()
            if fw.ic != PN532_IC:
                raise PN532Error(f"chip reports IC {fw.ic:#04x}, not a PN532 (0x32)")
            # ATR retries 0xFF, PSL 0x01 (the datasheet defaults); passive activation forever,
            # so the chip waits for a card and the host does not busy-poll (see module doc).
            device.set_max_retries(0xFF, 0x01, RETRY_FOREVER)
            device.rf_field(True)
        except PN532Error as exc:
            device.transport.close()
            self._fail_connect(
                ReaderState.ABSENT if isinstance(exc, PortError) else ReaderState.FAULT, exc
            )
            return
        self.firmware_version = str(fw)
        self._device = device
        self._failures = 0
        # `_held` survives a reconnect: a card left on the reader through a glitch is not a new
        # tap; if it went away meanwhile, the first presence check after reconnecting clears it.
        if self._state is not ReaderState.OK:
            log.info("PN532 on %s ready: %s", self.path, fw)
        self._ready()

    # ---- internals -------------------------------------------------------------------------

    def _fail_connect(self, state: ReaderState, exc: Exception) -> None:
        if self._state is ReaderState.OK or self._state is not state:
            log.warning("PN532 on %s unavailable (%s): %s", self.path, state.value, exc)
        self._unavailable(state)

    def _drop(self, state: ReaderState, exc: Exception) -> None:
        log.warning("PN532 on %s lost (%s): %s", self.path, state.value, exc)
        self._failures = 0
        self._lost(state)

    def _scan(self, remaining: float) -> str | None:
        device = self._device
        assert device is not None
        if self._held is None:
            started = self._monotonic()
            target = device.list_passive_106a(wait=min(remaining, self.wait_window))
            if target is None:
                # A chip (or emulator) that ignores MaxRetries 0xFF answers "no target" at once;
                # without this pause the host would busy-poll the UART at full speed.
                quick = MIN_CYCLE_S - (self._monotonic() - started)
                if quick > 0:
                    self._closed.wait(min(quick, max(0.0, remaining)))
                return None
            device.release()
            self._held, self._misses = target.uid, 0
            self._next_presence_check = self._monotonic() + self.presence_interval
            return target.uid
        pause = self._next_presence_check - self._monotonic()
        if pause > 0:
            self._closed.wait(min(pause, remaining))
            if pause > remaining:
                return None
        self._next_presence_check = self._monotonic() + self.presence_interval
        # Field off then on resets every card, so a card still there answers the next
        # InListPassiveTarget whatever state the last one left it in (e.g. HALT after release).
        device.rf_field(False)
        time.sleep(FIELD_OFF_S)
        device.rf_field(True)
        target = device.list_passive_106a(wait=self.presence_window)
        if target is not None:
            device.release()
            self._misses = 0
            if target.uid != self._held:  # one card swapped for another without a gap
                self._held = target.uid
                return target.uid
            return None
        self._misses += 1
        if self._misses >= self.removal_misses:
            log.debug("card %s removed", self._held)
            self._held = None
        return None
