"""Identifier rules shared by the wire contract, settings and topic builders.

Use the patterns with ``fullmatch()``, and the annotated types in pydantic models (the ``*Wire``
ones in the msgspec fast path of warmcard.contract): both *search* their pattern, so every type
here is anchored at both ends. ASCII character classes
only, never ``\\d`` or ``\\w``: those match full-width and other Unicode digits, which must not
reach topics or InfluxDB tags.
"""

from __future__ import annotations

import re
from typing import Annotated

import msgspec
from pydantic import StringConstraints

DEVICE_ID_RE = re.compile(r"[a-z0-9][a-z0-9-]{1,62}")
SITE_ID_RE = DEVICE_ID_RE
PERSON_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
# ISO 14443A UIDs are 4, 7 or 10 bytes; canonical form is upper-case hex without separators.
# Other spellings (lower case, "04:A1:..") are rejected, not normalised: the kiosk looked the card
# up by its canonical UID, and the cloud keys on exact strings (warmcard.cards normalises input
# typed by people before it gets this far).
CARD_UID_RE = re.compile(r"(?:[0-9A-F]{8}|[0-9A-F]{14}|[0-9A-F]{20})")
TS_RE = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})\.([0-9]{6})Z"
)
EVENT_ID_RE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")
HHMM_RE = re.compile(r"(?:[01][0-9]|2[0-3]):[0-5][0-9]")
REQUEST_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}")
# The irreversible token an erasure puts in place of a person's id and card number, in the cloud
# and (v1.3, warmcard.erase) in a kiosk's outbox: random, not derived from what it replaces.
ERASED_TOKEN_RE = re.compile(r"erased-[0-9a-f]{16}")
# A tap's card: a real UID, or (v1.3) the token of an erased person's card.
EVENT_CARD_RE = re.compile(f"(?:{CARD_UID_RE.pattern}|{ERASED_TOKEN_RE.pattern})")


def anchored(regex: re.Pattern[str]) -> str:
    """The rule as a pydantic pattern: pydantic searches (Rust regex), so anchor both ends."""
    # In Rust regex `$` without the m flag matches only at the very end (no trailing newline).
    return f"^(?:{regex.pattern})$"


DeviceId = Annotated[str, StringConstraints(pattern=anchored(DEVICE_ID_RE))]
SiteId = Annotated[str, StringConstraints(pattern=anchored(SITE_ID_RE))]
PersonId = Annotated[str, StringConstraints(pattern=anchored(PERSON_ID_RE))]
CardUid = Annotated[str, StringConstraints(pattern=anchored(CARD_UID_RE))]
EventId = Annotated[str, StringConstraints(pattern=anchored(EVENT_ID_RE))]
WireTs = Annotated[str, StringConstraints(pattern=anchored(TS_RE))]
HhMm = Annotated[str, StringConstraints(pattern=anchored(HHMM_RE))]
RequestId = Annotated[str, StringConstraints(pattern=anchored(REQUEST_ID_RE))]
ErasedToken = Annotated[str, StringConstraints(pattern=anchored(ERASED_TOKEN_RE))]
EventCardUid = Annotated[str, StringConstraints(pattern=anchored(EVENT_CARD_RE))]


def _py_anchored(regex: re.Pattern[str]) -> str:
    """The rule as a msgspec pattern: msgspec searches with Python's re, whose `$` also matches
    before a final newline, hence `\\Z`."""
    return f"^(?:{regex.pattern})\\Z"


DeviceIdWire = Annotated[str, msgspec.Meta(pattern=_py_anchored(DEVICE_ID_RE))]
PersonIdWire = Annotated[str, msgspec.Meta(pattern=_py_anchored(PERSON_ID_RE))]
CardUidWire = Annotated[str, msgspec.Meta(pattern=_py_anchored(CARD_UID_RE))]
EventIdWire = Annotated[str, msgspec.Meta(pattern=_py_anchored(EVENT_ID_RE))]
TsWire = Annotated[str, msgspec.Meta(pattern=_py_anchored(TS_RE))]
EventCardUidWire = Annotated[str, msgspec.Meta(pattern=_py_anchored(EVENT_CARD_RE))]


def is_erased(value: str | None) -> bool:
    """Whether an id or card number is an erasure's token (nothing identifying)."""
    # startswith first: ingest asks this of every tap's card, and almost none is a token.
    return (
        value is not None
        and value.startswith("erased-")
        and ERASED_TOKEN_RE.fullmatch(value) is not None
    )
