"""The simulated reader: shipped code, driven by the demo and the tests."""

from __future__ import annotations

import queue
import threading

from warmcard.contract import CARD_UID_RE, ReaderState


class SimReader:
    """A reader whose card field is driven by calls: `present`, `remove`, `tap`, `fail`."""

    def __init__(self, spec: str = "sim:") -> None:
        self.spec = spec
        self._presentations: queue.Queue[str] = queue.Queue()
        self._lock = threading.Lock()
        self._on_field: str | None = None
        self._state = ReaderState.OK

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

    def poll(self, timeout: float) -> str | None:
        if self._state is not ReaderState.OK:
            threading.Event().wait(timeout)
            return None
        try:
            return self._presentations.get(timeout=timeout)
        except queue.Empty:
            return None

    def close(self) -> None:
        self._state = ReaderState.ABSENT
