"""Time for the kiosk: wall time for event stamps, monotonic time for intervals, NTP sync state.

Three names, three things:
- `Clock`: the kiosk's source of time, passed in (wall µs, monotonic s, NTP sync state);
  `SystemClock` is the machine's, `ManualClock` moves only when told.
- `Monotonic`: a function returning seconds on a clock that never steps (`time.monotonic`),
  all that drivers and transports need to time their waits.
- a `..._us` int: a moment as UTC microseconds since the epoch (`Clock.now_us()`), which is
  what the kiosk's policy is handed; it never reads a clock itself.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from warmcard.timestamps import parse_ts

# adjtimex(2) returns TIME_ERROR while the kernel considers the clock unsynchronised (STA_UNSYNC).
_TIME_ERROR = 5
_TIMESYNCD_FLAG = Path("/run/systemd/timesync/synchronized")

Monotonic = Callable[[], float]


class Clock(Protocol):
    """Where the kiosk reads time; passed in so tests and the simulator control it."""

    def now_us(self) -> int:
        """Wall time, UTC microseconds since the epoch (may step when NTP corrects it)."""
        ...

    def monotonic(self) -> float:
        """Seconds on a clock that never steps, for intervals and deadlines."""
        ...

    def synced(self) -> bool:
        """Whether the wall time is believed correct (NTP-synchronised)."""
        ...


def kernel_synced() -> bool | None:
    """The kernel's own view through adjtimex(2), or None where it cannot be asked."""
    # Every NTP client (systemd-timesyncd, chrony, ntpd) clears STA_UNSYNC in the kernel once it
    # has disciplined the clock, and the kernel sets it again when maxerror grows past 16 s
    # without updates. So this one call covers whichever daemon the image ships, whereas the
    # timesyncd flag file below only exists with timesyncd. modes=0 only reads: no privilege.
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        libc = ctypes.CDLL(name, use_errno=True)
        adjtimex = libc.adjtimex
    except (OSError, AttributeError):
        return None
    # struct timex differs between 32- and 64-bit ABIs; we only need the return value, so a
    # zeroed buffer larger than any layout (modes=0: read only) is enough.
    buf = ctypes.create_string_buffer(512)
    state = adjtimex(buf)
    if state < 0:
        return None
    return bool(state != _TIME_ERROR)


class SystemClock:
    """The real clocks of the machine."""

    def now_us(self) -> int:
        return time.time_ns() // 1000

    def monotonic(self) -> float:
        return time.monotonic()

    def synced(self) -> bool:
        kernel = kernel_synced()
        if kernel is not None:
            return kernel
        # Not Linux/glibc: fall back to systemd-timesyncd's marker file.
        return _TIMESYNCD_FLAG.exists()


class ManualClock:
    """A clock that moves only when told: for tests and the fast-forward simulator."""

    def __init__(self, start_us: int | str = 1_795_933_086_000_000, *, synced: bool = True) -> None:
        self._lock = threading.Lock()
        self._now_us = parse_ts(start_us) if isinstance(start_us, str) else start_us
        self._mono = 1000.0
        self._synced = synced

    def now_us(self) -> int:
        with self._lock:
            return self._now_us

    def monotonic(self) -> float:
        with self._lock:
            return self._mono

    def synced(self) -> bool:
        return self._synced

    def advance(self, seconds: float) -> None:
        """Both clocks move forward by `seconds`."""
        if seconds < 0:
            raise ValueError("advance() cannot go back; use set() to step the wall clock")
        with self._lock:
            self._now_us += round(seconds * 1_000_000)
            self._mono += seconds

    def set(self, now_us: int | str | None = None, *, synced: bool | None = None) -> None:
        """Step the wall clock (forward or back, as NTP may) without moving monotonic time."""
        with self._lock:
            if now_us is not None:
                self._now_us = parse_ts(now_us) if isinstance(now_us, str) else now_us
            if synced is not None:
                self._synced = synced
