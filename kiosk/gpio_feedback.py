"""LED and buzzer answers to a tap: the pattern each outcome plays on the gateway's pins.

Each outcome has a named pattern (firmware_gateway.pins plays it); a success also pulses the
relay, if one is fitted. The table is documented for staff in hardware/README.md.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from gpiozero.pins import Factory

from firmware_gateway.pinmap import Pinmap
from firmware_gateway.pins import Pattern, PinPlayer, Step
from kiosk.policy import Outcome

_G, _R = {"green": True}, {"red": True}
_GB, _RB = {"green": True, "buzzer": True}, {"red": True, "buzzer": True}

PATTERNS: Mapping[Outcome, Pattern] = MappingProxyType(
    {
        Outcome.SUCCESS: Pattern(
            "成功 Success",
            "绿灯亮 0.5 秒，一声短鸣 · green 0.5 s, one short beep",
            (Step(0.1, **_GB), Step(0.4, **_G)),
        ),
        Outcome.REPEAT: Pattern(
            "已刷过 Repeat",
            "绿灯闪两下，两声轻鸣 · green blinks twice, soft double beep",
            (Step(0.05, **_GB), Step(0.15, **_G), Step(0.1), Step(0.05, **_GB), Step(0.15, **_G)),
        ),
        Outcome.UNKNOWN: Pattern(
            "未登记的卡 Unknown card",
            "红灯亮，一声长鸣 · red, one long beep",
            (Step(0.8, **_RB), Step(0.2, **_R)),
        ),
        Outcome.MEAL_REPEAT: Pattern(
            "本餐已领 Meal already served",
            "红绿交替，三声鸣 · red/green alternate, triple beep",
            (Step(0.15, **_RB), Step(0.15, **_G)) * 3,
        ),
        Outcome.FAULT: Pattern(
            "故障 Fault",
            "红灯慢闪，三声慢鸣 · red slow blink, slow repeated beep",
            (Step(0.3, **_RB), Step(0.4)) * 3,
        ),
        Outcome.STAFF: Pattern(
            "工作人员卡 Staff card",
            "绿灯长亮 1 秒，两声短鸣 · green 1 s, two short beeps",
            (Step(0.08, **_GB), Step(0.08, **_G), Step(0.08, **_GB), Step(0.76, **_G)),
        ),
    }
)

# Played in a loop while `indicate_fault(True)`: silent, so a reader fault that lasts hours
# does not beep at everyone in the courtyard, but a glance tells the staff something is wrong.
FAULT_INDICATOR = Pattern(
    "故障指示 Fault indicator",
    "红灯每 2 秒闪一下，无声 · red flash every 2 s, silent",
    (Step(0.1, **_R), Step(1.9)),
)


class GpioFeedback(PinPlayer):
    """`kiosk.feedback.Feedback` on the LEDs, buzzer and relay: each outcome plays its pattern.

    `relay_pulse_s` > 0 pulses the relay (door latch, light) for that long on each success.
    """

    def __init__(
        self,
        pinmap: Pinmap | None = None,
        *,
        relay_pulse_s: float = 0.0,
        pin_factory: Factory | None = None,
        patterns: Mapping[Outcome, Pattern] = PATTERNS,
        fault_indicator: Pattern = FAULT_INDICATOR,
    ) -> None:
        super().__init__(pinmap, relay_pulse_s=relay_pulse_s, pin_factory=pin_factory)
        self.patterns = patterns
        self.fault_indicator = fault_indicator

    def show(self, outcome: Outcome, message: str = "") -> None:
        """Start the outcome's pattern (interrupting any other) and return at once."""
        self.play(self.patterns[outcome])
        if outcome is Outcome.SUCCESS:
            self.pulse_relay()

    def indicate_fault(self, on: bool) -> None:
        """Persistent silent red flash between taps, while taps cannot be recorded."""
        self.set_background(self.fault_indicator if on else None)
