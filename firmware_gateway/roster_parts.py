"""Joins a roster the cloud split into parts (warmcard.contract.split_roster).

Part 1 (the head) is retained on the roster topic and names the roster that is current: its
version and how many parts it has. Parts 2..n are retained on `roster/<n>`. Parts arrive in any
order (separate topics), and retained parts of an older roster may still be on the broker, so a
roster is applied only when the head's version is complete; parts of other versions are kept
a little while (the head may come after them) and never applied on their own.
"""

from __future__ import annotations

from warmcard.contract import Roster
from warmcard.rejections import InvalidPayload, Reason
from warmcard.roster_split import join_roster

KEEP_VERSIONS = 2


class RosterParts:
    """Feed it every roster message; it returns the whole roster once one is complete."""

    def __init__(self) -> None:
        self._want: tuple[str, int] | None = None  # (version, parts) named by the head
        self._parts: dict[str, dict[int, Roster]] = {}

    def head(self, roster: Roster) -> Roster | None:
        """A message on the roster topic: a whole roster, or part 1 of a split one."""
        if roster.part != 1:
            raise InvalidPayload(Reason.SCHEMA, f"part {roster.part} on the roster topic")
        if roster.parts == 1:
            self._want = None
            self._parts.clear()
            return roster
        self._want = (roster.version, roster.parts)
        return self._add(roster)

    def part(self, roster: Roster, number: int) -> Roster | None:
        """A message on `roster/<number>`."""
        if roster.part != number or number < 2:
            raise InvalidPayload(Reason.SCHEMA, f"part {roster.part} on roster/{number}")
        return self._add(roster)

    def _add(self, roster: Roster) -> Roster | None:
        held = self._parts.pop(roster.version, {})
        held[roster.part] = roster
        self._parts[roster.version] = held  # most recent last
        while len(self._parts) > KEEP_VERSIONS:
            del self._parts[next(iter(self._parts))]
        if self._want is None:
            return None
        version, count = self._want
        held = self._parts.get(version, {})
        if len(held) < count or any(p.parts != count for p in held.values()):
            return None
        try:
            whole = join_roster(list(held.values()))
        except ValueError as exc:
            raise InvalidPayload(Reason.INCONSISTENT, str(exc)) from None
        del self._parts[version]
        self._want = None
        return whole
