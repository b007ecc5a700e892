"""A simulated keyboard-wedge reader: an evdev-like event source for `HidReader`, shipped.

`WedgeReaderSim.open` is passed to `HidReader(open_device=...)` in place of evdev.InputDevice.
It types card numbers the way a real wedge reader does (key down/up per character, then
Enter, a few ms apart) and can repeat while a card is held, type garbage, or be unplugged.
"""

from __future__ import annotations

import contextlib
import errno
import os
import threading
import time
from collections import deque

from evdev import InputEvent

from firmware_gateway.readers.hid import CHAR_KEYS, EV_KEY, KEY_ENTER
from warmcard.cards import from_uid

KEY_UP, KEY_DOWN = 0, 1


class _SimDevice:
    """One "plugged-in" instance; reads fail with ENODEV once unplugged."""

    def __init__(self, sim: WedgeReaderSim) -> None:
        self._sim = sim
        self.grabbed = False

    def fileno(self) -> int:
        return self._sim._read_fd

    def grab(self) -> None:
        self.grabbed = True

    def read(self) -> list[InputEvent]:
        return self._sim._take(self)

    def close(self) -> None:
        self.grabbed = False


class WedgeReaderSim:
    """A wedge reader printing 10-digit decimal (or another format) plus Enter."""

    def __init__(
        self,
        order: str = "le",
        fmt: str = "dec10",
        key_interval: float = 0.004,
        repeat_every: float | None = 0.3,
    ) -> None:
        self.order, self.format = order, fmt
        self.key_interval = key_interval
        self.repeat_every = repeat_every  # None: types once per presentation
        self._read_fd, self._write_fd = os.pipe()
        os.set_blocking(self._read_fd, False)
        self._lock = threading.Lock()
        self._events: deque[InputEvent] = deque()
        self._plugged = True
        self._device: _SimDevice | None = None
        self._held: str | None = None
        self._holder: threading.Thread | None = None
        self._stop = threading.Event()

    def open(self, path: str) -> _SimDevice:
        """The `open_device` for HidReader: a fresh device, or ENOENT while unplugged."""
        with self._lock:
            if not self._plugged:
                raise FileNotFoundError(errno.ENOENT, "No such file or directory", path)
            self._device = _SimDevice(self)
            return self._device

    def type_text(self, text: str, interval: float | None = None) -> None:
        """Type `text` then Enter; characters without a key become KEY_SLASH (garbage)."""
        gap = self.key_interval if interval is None else interval
        t = time.time()
        events = []
        for ch in text:
            code = CHAR_KEYS.get(ch.upper(), 53)  # 53 = KEY_SLASH
            for value in (KEY_DOWN, KEY_UP):
                events.append(_event(t, code, value))
            t += gap
        events += [_event(t, KEY_ENTER, KEY_DOWN), _event(t, KEY_ENTER, KEY_UP)]
        self._push(events)

    def present(self, uid: str) -> None:
        """A card arrives: its number is typed, and again every `repeat_every` s while held."""
        self.remove()
        self._held = uid
        self.type_text(from_uid(uid, self.order, self.format))
        if self.repeat_every is not None:
            self._stop = threading.Event()
            self._holder = threading.Thread(
                target=self._repeat, args=(uid, self._stop), daemon=True
            )
            self._holder.start()

    def remove(self) -> None:
        self._held = None
        self._stop.set()
        if self._holder is not None:
            self._holder.join()
            self._holder = None

    def garble_next(self) -> None:
        """A half number cut off by a long pause, then a line with a non-hex key: both rejected."""
        self._push([_event(time.time() - 1.0, CHAR_KEYS["1"], KEY_DOWN)])
        self.type_text("12#4567890")

    def go_silent(self) -> None:
        """Unplug the reader."""
        with self._lock:
            self._plugged = False
            self._device = None
        os.write(self._write_fd, b"x")  # wake the reader's select so the read fails

    def come_back(self) -> None:
        with self._lock:
            self._plugged = True

    def close(self) -> None:
        self.remove()
        for fd in (self._read_fd, self._write_fd):
            with contextlib.suppress(OSError):
                os.close(fd)

    def _repeat(self, uid: str, stop: threading.Event) -> None:
        assert self.repeat_every is not None
        while not stop.wait(self.repeat_every):
            self.type_text(from_uid(uid, self.order, self.format))

    def _push(self, events: list[InputEvent]) -> None:
        with self._lock:
            self._events.extend(events)
        os.write(self._write_fd, b"x")

    def _take(self, device: _SimDevice) -> list[InputEvent]:
        with contextlib.suppress(BlockingIOError):
            os.read(self._read_fd, 4096)
        with self._lock:
            if device is not self._device:
                raise OSError(errno.ENODEV, "No such device")
            if not self._events:
                raise BlockingIOError(errno.EAGAIN, "no events")
            events = list(self._events)
            self._events.clear()
            return events


def _event(t: float, code: int, value: int) -> InputEvent:
    sec = int(t)
    return InputEvent(sec, int((t - sec) * 1_000_000), EV_KEY, code, value)
