"""What a tap means: pure decisions, with no I/O, threads or clock reads (time is passed in).

The rules are in `rules`, the answers in `outcomes`, card lookup in `roster`. The running kiosk
(`kiosk.runtime`) and the file-backed cache (`kiosk.cache`) are outside this package, so an
import rule can keep it pure.
"""

from kiosk.policy.outcomes import (
    MSG_DISK_FULL,
    MSG_ENROLLING,
    MSG_FAULT,
    MSG_NO_STAFF_CARD,
    MSG_NOT_CONFIGURED,
    MSG_NOT_ON_ROSTER,
    MSG_READER_FAULT,
    MSG_REPEAT,
    MSG_UNKNOWN,
    Decision,
    Outcome,
)
from kiosk.policy.roster import Lookup, RosterIndex
from kiosk.policy.rules import DEFAULT_MEALS, MEAL_NAMES, Policy, zone

__all__ = [
    "DEFAULT_MEALS",
    "MEAL_NAMES",
    "MSG_DISK_FULL",
    "MSG_ENROLLING",
    "MSG_FAULT",
    "MSG_NOT_CONFIGURED",
    "MSG_NOT_ON_ROSTER",
    "MSG_NO_STAFF_CARD",
    "MSG_READER_FAULT",
    "MSG_REPEAT",
    "MSG_UNKNOWN",
    "Decision",
    "Lookup",
    "Outcome",
    "Policy",
    "RosterIndex",
    "zone",
]
