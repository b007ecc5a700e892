"""Who a card belongs to: the roster indexed by card UID, with no files or locks.

`kiosk.cache.LocalCache` keeps the roster on disk and swaps in a new index when one arrives.
"""

from __future__ import annotations

from collections.abc import Callable

from warmcard.contract import Roster, RosterEntry

Lookup = Callable[[str], RosterEntry | None]


class RosterIndex:
    """card_uid -> roster entry for one roster (None: no roster yet, every card unknown)."""

    def __init__(self, roster: Roster | None = None) -> None:
        self.roster = roster
        self._by_uid = {} if roster is None else {e.card_uid: e for e in roster.entries}

    def lookup(self, card_uid: str) -> RosterEntry | None:
        return self._by_uid.get(card_uid)
