"""`hid:/dev/input/by-id/<reader>-event-kbd[?order=le&format=auto]`: USB keyboard-wedge readers.

These readers "type" the card number followed by Enter. The driver grabs the input device
exclusively (so the digits never reach a console or the kiosk screen) and reads its key events
with python-evdev.

The card-number formats it accepts, and how each maps to the canonical UID, are in
`warmcard.cards`.

Anything else (wrong length, non-hex keys, a gap of more than
``key_gap`` s between keys — a partial read or a person typing) is rejected and logged.

Most wedge readers type the number once per presentation; some repeat it while the card is
held. The driver therefore drops the same UID if it was last typed less than ``repeat_window``
s ago; a card really re-presented within that window is not a second tap (the trade-off).
"""

from __future__ import annotations

import contextlib
import errno
import logging
import select
import time
from collections.abc import Callable, Iterable
from typing import Any, Protocol
from urllib.parse import parse_qs

from firmware_gateway.clock import Monotonic
from firmware_gateway.errors import UnknownReaderSpec
from firmware_gateway.readers.base import PollingReader
from warmcard.cards import FORMATS, ORDERS, BadCardNumber, to_uid
from warmcard.contract import ReaderState

log = logging.getLogger(__name__)

EV_KEY = 1
KEY_DOWN = 1
KEY_ENTER = 28
KEY_KPENTER = 96
SHIFT_KEYS = {42, 54}  # KEY_LEFTSHIFT, KEY_RIGHTSHIFT: readers shift for A-F; ignored
# Top-row digits KEY_1..KEY_9 = 2..10, KEY_0 = 11; keypad digits (some readers use them).
KEY_CHARS: dict[int, str] = {2 + i: str((i + 1) % 10) for i in range(10)}
KEY_CHARS.update({71: "7", 72: "8", 73: "9", 75: "4", 76: "5", 77: "6", 79: "1", 80: "2", 81: "3"})
KEY_CHARS.update({82: "0", 30: "A", 48: "B", 46: "C", 32: "D", 18: "E", 33: "F"})
CHAR_KEYS: dict[str, int] = {c: k for k, c in KEY_CHARS.items() if k < 71}


class EventSource(Protocol):
    """What the driver needs of an input device; evdev.InputDevice is the real one."""

    def fileno(self) -> int: ...

    def read(self) -> Iterable[Any]: ...

    def grab(self) -> None: ...

    def close(self) -> None: ...


def parse_spec(spec: str) -> tuple[str, str, str]:
    """`hid:/dev/input/by-id/x?order=be&format=w26` → (path, order, format)."""
    scheme, _, rest = spec.partition(":")
    path, _, query = rest.partition("?")
    opts = {k: v[-1] for k, v in parse_qs(query).items()}
    order, fmt = opts.get("order", "le"), opts.get("format", "auto")
    if scheme != "hid" or not path or order not in ORDERS or fmt not in FORMATS:
        raise UnknownReaderSpec(
            f"reader {spec!r}: expected hid:/dev/input/by-id/<device>[?order=le|be]"
            f"[&format={'|'.join(FORMATS)}]"
        )
    return path, order, fmt


def open_evdev(path: str) -> EventSource:
    import evdev

    device: EventSource = evdev.InputDevice(path)
    return device


class HidReader(PollingReader):
    """A keyboard-wedge reader through evdev; reopens it after unplugging."""

    def __init__(
        self,
        spec: str,
        *,
        open_device: Callable[[str], EventSource] = open_evdev,
        monotonic: Monotonic = time.monotonic,
        key_gap: float = 0.1,
        repeat_window: float = 1.0,
        retry_interval: float = 1.0,
    ) -> None:
        super().__init__(spec, monotonic=monotonic, retry_interval=retry_interval)
        self.path, self.order, self.format = parse_spec(spec)
        self._open_device = open_device
        self.key_gap = key_gap
        self.repeat_window = repeat_window
        self._dev: EventSource | None = None
        self._chars: list[str] = []
        self._garbled = False
        self._last_key_ts: float | None = None
        self._last_uid: str | None = None
        self._last_uid_ts = float("-inf")
        self._pending: list[str] = []
        self.rejected = 0

    # ---- the driver's part of PollingReader -------------------------------------------------

    def _is_open(self) -> bool:
        return self._dev is not None

    def _buffered(self) -> str | None:
        return self._pending.pop(0) if self._pending else None

    def _read(self, remaining: float) -> str | None:
        assert self._dev is not None
        try:
            ready, _, _ = select.select([self._dev], [], [], remaining)
            if ready:
                for event in self._dev.read():
                    self._on_event(event)
        except BlockingIOError:
            return None
        except OSError as exc:
            log.warning("HID reader %s lost: %s", self.path, exc)
            self._lost(ReaderState.ABSENT if exc.errno == errno.ENODEV else ReaderState.FAULT)
            return None
        return self._buffered()

    def _close_device(self) -> None:
        if self._dev is not None:
            with contextlib.suppress(OSError):
                self._dev.close()
            self._dev = None

    def _open(self) -> None:
        try:
            dev = self._open_device(self.path)
            # Exclusive grab: the typed digits must reach only us, not a console or X.
            dev.grab()
        except OSError as exc:
            state = (
                ReaderState.ABSENT
                if exc.errno in (errno.ENOENT, errno.ENODEV)
                else ReaderState.FAULT
            )
            if self._state is not state:
                log.warning("HID reader %s unavailable: %s", self.path, exc)
            self._unavailable(state)
            return
        self._dev = dev
        self._reset_line()
        if self._state is not ReaderState.OK:
            log.info("HID reader %s ready", self.path)
        self._ready()

    # ---- internals -------------------------------------------------------------------------

    def _reset_line(self) -> None:
        self._chars, self._garbled, self._last_key_ts = [], False, None

    def _on_event(self, event: Any) -> None:
        if event.type != EV_KEY or event.value != KEY_DOWN or event.code in SHIFT_KEYS:
            return
        ts = event.timestamp()
        if self._last_key_ts is not None and ts - self._last_key_ts > self.key_gap and self._chars:
            log.warning(
                "HID reader %s: partial input %r dropped (key gap)", self.path, "".join(self._chars)
            )
            self.rejected += 1
            self._reset_line()
        self._last_key_ts = ts
        if event.code in (KEY_ENTER, KEY_KPENTER):
            self._finish_line(ts)
            return
        char = KEY_CHARS.get(event.code)
        if char is None:
            self._garbled = True
        else:
            self._chars.append(char)

    def _finish_line(self, ts: float) -> None:
        text, garbled = "".join(self._chars), self._garbled
        self._reset_line()
        if not text and not garbled:
            return
        try:
            if garbled:
                raise BadCardNumber(f"non-hex key in {text!r}")
            uid = to_uid(text, self.order, self.format)
        except BadCardNumber as exc:
            self.rejected += 1
            log.warning("HID reader %s: rejected input: %s", self.path, exc)
            return
        repeat = uid == self._last_uid and ts - self._last_uid_ts < self.repeat_window
        self._last_uid, self._last_uid_ts = uid, ts
        if not repeat:
            self._pending.append(uid)
