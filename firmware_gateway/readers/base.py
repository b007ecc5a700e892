"""The small interface every card reader driver implements."""

from __future__ import annotations

from typing import Protocol

from warmcard.contract import ReaderState


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
