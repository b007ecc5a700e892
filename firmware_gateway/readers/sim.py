"""The simulated reader: shipped code, driven by the demo and the tests.

Specs:
- `sim:` (or `sim:<label>`) — driven by calls (`tap`, `present`, `remove`, `fail`)
  from the same process.
- `sim:fifo=/run/warmcard/taps` — also fed from outside, one UID per line, through a named
  pipe (created if missing). A technician can test a kiosk's whole path without a card:
  `echo 04A1B2C3 > /run/warmcard/taps`. Each line is one tap; a bad line is logged and skipped.
"""

from __future__ import annotations

import logging
import os
import queue
import select
import stat
import threading
from pathlib import Path

from firmware_gateway.errors import UnknownReaderSpec
from warmcard.contract import ReaderState
from warmcard.ids import CARD_UID_RE

log = logging.getLogger("warmcard.gateway.reader.sim")


class SimReader:
    """A reader whose card field is driven by calls: `present`, `remove`, `tap`, `fail`."""

    def __init__(self, spec: str = "sim:") -> None:
        self.spec = spec
        self._presentations: queue.Queue[str] = queue.Queue()
        self._lock = threading.Lock()
        self._on_field: str | None = None
        self._state = ReaderState.OK
        self._fifo_fd: int | None = None
        self._fifo_buf = b""
        _, _, option = spec.partition(":")
        if option.startswith("fifo="):
            path = option.removeprefix("fifo=")
            if not path:
                raise UnknownReaderSpec(f"reader {spec!r}: use `sim:fifo=/path/to/pipe`")
            self._fifo_fd = self._open_fifo(Path(path))
        # Any other text after `sim:` is only a label (the simulator names its kiosks).

    @staticmethod
    def _open_fifo(path: Path) -> int:
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            os.mkfifo(path, 0o660)
        elif not stat.S_ISFIFO(path.stat().st_mode):
            raise UnknownReaderSpec(f"reader sim:fifo={path}: not a named pipe (mkfifo it)")
        # O_RDWR: we hold a writer end ourselves, so the pipe never reads as EOF between
        # writers (`echo` opens, writes and closes) and select() does not spin.
        return os.open(path, os.O_RDWR | os.O_NONBLOCK)

    @property
    def state(self) -> ReaderState:
        return self._state

    def present(self, uid: str) -> None:
        """A card enters the field; a card already held there is not a new presentation."""
        uid = uid.upper()
        if not CARD_UID_RE.fullmatch(uid):
            raise ValueError(f"not a 4, 7 or 10 byte hex UID: {uid!r}")
        with self._lock:
            if self._on_field == uid:
                return
            self._on_field = uid
        self._presentations.put(uid)

    def remove(self) -> None:
        with self._lock:
            self._on_field = None

    def tap(self, uid: str) -> None:
        """Present and remove: the usual gesture."""
        self.present(uid)
        self.remove()

    def fail(self) -> None:
        """The reader stops answering (unplugged, power glitch)."""
        self._state = ReaderState.FAULT

    def recover(self) -> None:
        self._state = ReaderState.OK

    def _read_fifo(self, timeout: float) -> None:
        """Turn complete lines waiting in the pipe into taps (waits up to `timeout`)."""
        fd = self._fifo_fd
        if fd is None:
            return
        readable, _, _ = select.select([fd], [], [], timeout)
        if not readable:
            return
        try:
            self._fifo_buf += os.read(fd, 65536)
        except BlockingIOError:
            return
        *lines, self._fifo_buf = self._fifo_buf.split(b"\n")
        for raw in lines:
            text = raw.decode("ascii", "replace").strip()
            if not text:
                continue
            try:
                self.tap(text)
            except ValueError as exc:
                log.error("sim reader: ignoring line %r from the pipe: %s", text[:40], exc)

    def poll(self, timeout: float) -> str | None:
        if self._state is not ReaderState.OK:
            threading.Event().wait(timeout)
            return None
        if self._fifo_fd is not None and self._presentations.empty():
            self._read_fifo(timeout)
            timeout = 0.0
        try:
            if timeout <= 0:
                return self._presentations.get_nowait()
            return self._presentations.get(timeout=timeout)
        except queue.Empty:
            return None

    def close(self) -> None:
        self._state = ReaderState.ABSENT
        if self._fifo_fd is not None:
            os.close(self._fifo_fd)
            self._fifo_fd = None
