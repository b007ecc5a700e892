"""How the kiosk answers a tap. Implementations: the GPIO LEDs and buzzer, the screen, a log.

Every channel implements `Feedback.show(outcome, message)`. A channel that also needs the event
kind (the voice says "签到成功" for a check-in but "再见" for a check-out, both SUCCESS) adds
`show_tap(outcome, message, kind)`; `show_decision` calls that where present, else `show`. So
channels written against the two-argument protocol keep working unchanged.
"""

from __future__ import annotations

import logging
from typing import Protocol, runtime_checkable

from kiosk.policy import Outcome
from warmcard.contract import Kind


class Feedback(Protocol):
    """Answers one tap; must return at once, never blocking the next read."""

    def show(self, outcome: Outcome, message: str = "") -> None: ...


@runtime_checkable
class KindFeedback(Protocol):
    """A channel that answers differently by event kind (None: nothing recorded, or unknown)."""

    def show_tap(self, outcome: Outcome, message: str, kind: Kind | None) -> None: ...


def show_decision(channel: Feedback, outcome: Outcome, message: str, kind: Kind | None) -> None:
    """Answer one tap on `channel`, with its kind where the channel can use it."""
    if isinstance(channel, KindFeedback):
        channel.show_tap(outcome, message, kind)
    else:
        channel.show(outcome, message)


log = logging.getLogger("warmcard.kiosk.feedback")


class LogFeedback:
    """Feedback written to the log: for the simulator and headless kiosks."""

    def __init__(self) -> None:
        self.shown: list[tuple[Outcome, str]] = []

    def show(self, outcome: Outcome, message: str = "") -> None:
        self.shown.append((outcome, message))
        if len(self.shown) > 1000:
            del self.shown[:500]
        # The message names the person ("杨桂英 已签到"): the screen shows it, the log must not.
        log.info("feedback %s", outcome.value)


class MultiFeedback:
    """Fans one outcome out to several feedback channels (LEDs, buzzer, screen)."""

    def __init__(self, *channels: Feedback) -> None:
        self.channels = channels

    def show(self, outcome: Outcome, message: str = "") -> None:
        self.show_tap(outcome, message, None)

    def show_tap(self, outcome: Outcome, message: str, kind: Kind | None) -> None:
        for channel in self.channels:
            try:
                show_decision(channel, outcome, message, kind)
            except Exception:  # a broken buzzer must not silence the screen
                log.exception("feedback channel %s failed", type(channel).__name__)
