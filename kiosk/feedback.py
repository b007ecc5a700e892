"""How the kiosk answers a tap. Implementations: the GPIO LEDs and buzzer, the screen, a log."""

from __future__ import annotations

import logging
from enum import StrEnum
from typing import Protocol


class Outcome(StrEnum):
    SUCCESS = "success"  # recorded: check-in, check-out or meal
    REPEAT = "repeat"  # the same card again within the debounce window: already recorded
    UNKNOWN = "unknown"  # card not on the roster: recorded for enrolment
    MEAL_REPEAT = "meal_repeat"  # a second meal in the same period: recorded, with a warning
    FAULT = "fault"  # not recorded (disk full, outbox error) or reader fault


class Feedback(Protocol):
    """Answers one tap; must return at once, never blocking the next read."""

    def show(self, outcome: Outcome, message: str = "") -> None: ...


log = logging.getLogger("warmcard.kiosk.feedback")


class LogFeedback:
    """Feedback written to the log: for the simulator and headless kiosks."""

    def __init__(self) -> None:
        self.shown: list[tuple[Outcome, str]] = []

    def show(self, outcome: Outcome, message: str = "") -> None:
        self.shown.append((outcome, message))
        if len(self.shown) > 1000:
            del self.shown[:500]
        log.info("feedback %s %s", outcome.value, message)


class MultiFeedback:
    """Fans one outcome out to several feedback channels (LEDs, buzzer, screen)."""

    def __init__(self, *channels: Feedback) -> None:
        self.channels = channels

    def show(self, outcome: Outcome, message: str = "") -> None:
        for channel in self.channels:
            channel.show(outcome, message)
