"""systemd notify for Type=notify units: READY, STATUS, and watchdog pings gated on liveness.

Every long-running loop (reader, uplink, heartbeat...) calls `beat(name)` each time round. The
pinger sends WATCHDOG=1 only while *every* registered loop has beaten within `max_age_s`; one hung
thread therefore stops the pings and systemd restarts the service after WatchdogSec, even though
the process and its other threads are still alive. Without $NOTIFY_SOCKET (tests, a shell) all
notifications are no-ops and the liveness bookkeeping still works.

    watchdog = Watchdog.from_environ()
    watchdog.register("reader"); watchdog.register("uplink")
    watchdog.start()                 # pinger thread, at half of WatchdogSec
    watchdog.ready("签到中 running")
    ...  in each loop: watchdog.beat("reader")
    watchdog.close()                 # STOPPING=1
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable

import sdnotify

log = logging.getLogger("warmcard.watchdog")

DEFAULT_MAX_AGE_S = 60.0


class Watchdog:
    """Liveness of named loops, and the sd_notify messages that follow from it."""

    def __init__(
        self,
        *,
        watchdog_s: float | None = None,
        max_age_s: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.watchdog_s = watchdog_s
        # A loop silent for the whole WatchdogSec is hung; systemd would give up on us then too.
        self.max_age_s = max_age_s or watchdog_s or DEFAULT_MAX_AGE_S
        self.clock = clock
        self._notifier: sdnotify.SystemdNotifier | None = None
        notify_socket = os.environ.get("NOTIFY_SOCKET")
        if notify_socket:
            # sdnotify reads $NOTIFY_SOCKET itself and leaks its socket when there is none to
            # connect to, so it is only built when systemd gave us one.
            self._notifier = sdnotify.SystemdNotifier()
            if self._notifier.socket is None:
                log.warning(
                    "NOTIFY_SOCKET %s is not reachable; systemd will not hear us", notify_socket
                )
                self._notifier = None
        self._beats: dict[str, float] = {}
        self._lock = threading.Lock()
        self._stalled: tuple[str, ...] = ()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @classmethod
    def from_environ(
        cls, *, clock: Callable[[], float] = time.monotonic, max_age_s: float | None = None
    ) -> Watchdog:
        """Read NOTIFY_SOCKET, WATCHDOG_USEC and WATCHDOG_PID as systemd sets them."""
        env = os.environ
        usec = env.get("WATCHDOG_USEC", "")
        pid = env.get("WATCHDOG_PID", "")
        watchdog_s = int(usec) / 1e6 if usec.isdigit() and int(usec) > 0 else None
        if pid and pid != str(os.getpid()):
            watchdog_s = None  # the watchdog belongs to another process (we were forked)
        return cls(watchdog_s=watchdog_s, max_age_s=max_age_s, clock=clock)

    @property
    def enabled(self) -> bool:
        """True when systemd is listening."""
        return self._notifier is not None

    def notify(self, message: str) -> None:
        if self._notifier is None or self._notifier.socket is None:
            return
        # Not SystemdNotifier.notify: it encodes latin-1 and silently drops anything else, so
        # every zh-CN STATUS would vanish. systemd reads the datagram as UTF-8.
        try:
            self._notifier.socket.sendall(message.encode("utf-8"))
        except OSError as exc:
            log.debug("sd_notify %r failed: %s", message, exc)

    def ready(self, status: str = "") -> None:
        self.notify("READY=1" + (f"\nSTATUS={status}" if status else ""))

    def status(self, text: str) -> None:
        self.notify(f"STATUS={text}")

    def register(self, name: str) -> None:
        """A loop that must keep beating; counted as fresh from now."""
        with self._lock:
            self._beats[name] = self.clock()

    def beat(self, name: str) -> None:
        """Called by a loop each time round: it is alive."""
        with self._lock:
            self._beats[name] = self.clock()

    def forget(self, name: str) -> None:
        """A loop that ended on purpose no longer holds the pings back."""
        with self._lock:
            self._beats.pop(name, None)

    def stale(self) -> list[str]:
        """Loops that have not beaten within max_age_s, oldest first."""
        now = self.clock()
        with self._lock:
            late = [(t, n) for n, t in self._beats.items() if now - t > self.max_age_s]
        return [name for _, name in sorted(late)]

    def ping(self) -> bool:
        """Send WATCHDOG=1 if every loop is fresh; otherwise say which are stuck, and hold back."""
        stale = tuple(self.stale())
        if stale != self._stalled:
            self._stalled = stale
            if stale:
                log.error("loops not answering: %s; holding back the watchdog", ", ".join(stale))
                self.status(f"卡住 stalled: {', '.join(stale)}")
            else:
                self.status("运行中 running")
        if stale:
            return False
        self.notify("WATCHDOG=1")
        return True

    def start(self, interval_s: float | None = None) -> None:
        """Ping from a thread every interval (default: half of WatchdogSec); no-op without one."""
        interval = interval_s or (self.watchdog_s / 2 if self.watchdog_s else None)
        if interval is None or self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._pinger, args=(interval,), name="watchdog", daemon=True
        )
        self._thread.start()

    def _pinger(self, interval: float) -> None:
        self.ping()
        while not self._stop.wait(interval):
            self.ping()

    def close(self) -> None:
        """Stop pinging, tell systemd we are stopping, release the socket."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        self.notify("STOPPING=1")
        if self._notifier is not None and self._notifier.socket is not None:
            self._notifier.socket.close()
        self._notifier = None
