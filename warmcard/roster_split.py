"""Splitting a roster into messages the broker accepts, and joining them again (v1.2).

docs/protocol.md, "Split rosters": the cloud splits (cloud_ingest.pipeline.downlink), the kiosk
joins (firmware_gateway.roster_parts).
"""

from __future__ import annotations

from warmcard.contract import MAX_ROSTER_MESSAGE_BYTES, MAX_ROSTER_PARTS, Roster, RosterEntry


def split_roster(roster: Roster, limit: int = MAX_ROSTER_MESSAGE_BYTES) -> list[Roster]:
    """The messages that carry `roster`: itself when it fits in `limit` bytes, else parts."""
    if len(roster.to_bytes()) <= limit:
        return [roster]
    # Room for the envelope with the largest part numbers; each entry costs its JSON and a comma.
    head = Roster(
        site_id=roster.site_id,
        version=roster.version,
        entries=[],
        part=MAX_ROSTER_PARTS,
        parts=MAX_ROSTER_PARTS,
    )
    budget = limit - len(head.to_bytes())
    chunks: list[list[RosterEntry]] = [[]]
    size = 0
    for entry in roster.entries:
        cost = len(entry.model_dump_json().encode()) + 1
        if chunks[-1] and size + cost > budget:
            chunks.append([])
            size = 0
        chunks[-1].append(entry)
        size += cost
    if len(chunks) > MAX_ROSTER_PARTS:
        raise ValueError(
            f"roster of site {roster.site_id} needs {len(chunks)} parts (at most "
            f"{MAX_ROSTER_PARTS}): {len(roster.entries)} cards"
        )
    return [
        Roster(
            site_id=roster.site_id,
            version=roster.version,
            entries=chunk,
            part=i,
            parts=len(chunks),
        )
        for i, chunk in enumerate(chunks, start=1)
    ]


def join_roster(parts: list[Roster]) -> Roster:
    """The whole roster from all its parts (any order); ValueError if they do not make one."""
    if not parts:
        raise ValueError("no roster parts")
    first = parts[0]
    numbers = sorted(p.part for p in parts)
    if numbers != list(range(1, first.parts + 1)) or any(
        (p.site_id, p.version, p.parts) != (first.site_id, first.version, first.parts)
        for p in parts
    ):
        raise ValueError(f"roster {first.version}: parts {numbers} do not make 1..{first.parts}")
    entries = [e for p in sorted(parts, key=lambda p: p.part) for e in p.entries]
    return Roster(site_id=first.site_id, version=first.version, entries=entries)
