"""The small interface every card reader driver implements, and the loop the hardware ones share.

`Reader` is what the kiosk sees. `PollingReader` is the shared base of the drivers that talk to
a device (pn532, libnfc, hid), as nfcpy's pn53x base is shared by pn531/pn532/pn533: it owns the
poll deadline, the lazy open, the back-off between attempts to open, the quick reopen after a
device is lost, and close. Each driver adds only how to open, read and close its device, and
which of its errors mean "noise" and which mean "gone".
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from typing import Protocol

from firmware_gateway.clock import Monotonic
from warmcard.contract import ReaderState

# After a device was lost mid-read, try again this soon (or sooner, if retry_interval is
# shorter): a lost frame or a USB re-enumeration is usually over within a few ms, and a card on
# the reader should not wait a whole retry interval.
REOPEN_AFTER_LOSS_S = 0.05


class Reader(Protocol):
    """Yields one UID per card presentation; recovers by itself from unplug and silence.

    `poll` returns the canonical UID (upper-case hex) of a card that has just been presented,
    or None when nothing new happened within `timeout` seconds. A card held on the reader is
    one presentation: it is reported again only after it has been removed.
    """

    spec: str

    @property
    def state(self) -> ReaderState: ...

    def poll(self, timeout: float) -> str | None: ...

    def close(self) -> None: ...


class PollingReader(ABC):
    """A `Reader` over a device that is opened lazily and reopened by itself after a loss."""

    def __init__(self, spec: str, *, monotonic: Monotonic, retry_interval: float) -> None:
        self.spec = spec
        self.retry_interval = retry_interval
        self._monotonic = monotonic
        self._state = ReaderState.ABSENT
        self._next_attempt = 0.0
        self._closed = threading.Event()

    @property
    def state(self) -> ReaderState:
        return self._state

    def poll(self, timeout: float) -> str | None:
        deadline = self._monotonic() + timeout
        while not self._closed.is_set():
            uid = self._buffered()
            if uid is not None:
                return uid
            now = self._monotonic()
            if not self._is_open() and now >= self._next_attempt:
                self._open()
                now = self._monotonic()
            remaining = deadline - now
            if remaining <= 0:
                return None
            wake = self._next_read_at() if self._is_open() else self._next_attempt
            if wake > now:
                self._closed.wait(min(wake - now, remaining))
                continue
            if not self._is_open():
                continue
            uid = self._read(remaining)
            if uid is not None:
                return uid
        return None

    def close(self) -> None:
        self._closed.set()
        self._close_device()
        self._state = ReaderState.ABSENT

    # ---- for the drivers -------------------------------------------------------------------

    def _ready(self) -> None:
        """The device is open and answering."""
        self._state = ReaderState.OK

    def _unavailable(self, state: ReaderState) -> None:
        """Opening failed: try again after `retry_interval`."""
        self._state = state
        self._next_attempt = self._monotonic() + self.retry_interval

    def _lost(self, state: ReaderState) -> None:
        """The open device stopped answering: close it and reopen it soon."""
        self._close_device()
        self._state = state
        self._next_attempt = self._monotonic() + min(self.retry_interval, REOPEN_AFTER_LOSS_S)

    def _buffered(self) -> str | None:
        """A UID already read and not yet returned (a device may deliver several at once)."""
        return None

    def _next_read_at(self) -> float:
        """Monotonic time before which the open device is not read again (pacing)."""
        return 0.0

    @abstractmethod
    def _is_open(self) -> bool: ...

    @abstractmethod
    def _open(self) -> None:
        """Open the device; on failure call `_unavailable`, on success `_ready`."""

    @abstractmethod
    def _read(self, remaining: float) -> str | None:
        """Wait up to `remaining` s for a new presentation; a lost device calls `_lost`."""

    @abstractmethod
    def _close_device(self) -> None: ...
