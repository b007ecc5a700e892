"""LED and buzzer answers to a tap, played through gpiozero from a table of steps.

Each outcome has a named pattern: a tuple of steps (seconds, green, red, buzzer). A background
thread plays them, so `show` returns at once; a new outcome cuts the one playing short, because
the elder in front of the reader now is the one the lights must answer.

The buzzer is an *active* buzzer switched by an NPN transistor (hardware/README.md): it has one
pitch, so patterns differ by rhythm and length, never by tone.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from gpiozero import LED, Buzzer, DigitalOutputDevice
from gpiozero.pins import Factory

from firmware_gateway.pinmap import Pinmap, PinmapError, load_pinmap
from kiosk.feedback import Outcome


@dataclass(frozen=True)
class Step:
    seconds: float
    green: bool = False
    red: bool = False
    buzzer: bool = False


@dataclass(frozen=True)
class Pattern:
    name: str
    description: str
    steps: tuple[Step, ...]

    @property
    def seconds(self) -> float:
        return sum(step.seconds for step in self.steps)


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
    }
)

# Played in a loop while `indicate_fault(True)`: silent, so a reader fault that lasts hours
# does not beep at everyone in the courtyard, but a glance tells the staff something is wrong.
FAULT_INDICATOR = Pattern(
    "故障指示 Fault indicator",
    "红灯每 2 秒闪一下，无声 · red flash every 2 s, silent",
    (Step(0.1, **_R), Step(1.9)),
)

_OFF = Step(0.0)


class GpioFeedback:
    """`kiosk.feedback.Feedback` on the pin map's green LED, red LED, buzzer and optional relay.

    `relay_pulse_s` > 0 pulses the relay (door latch, light) for that long on each success.
    `pin_factory` None uses gpiozero's own choice (GPIOZERO_PIN_FACTORY, or the Pi's default).
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
        self.pinmap = pinmap if pinmap is not None else load_pinmap()
        self.patterns = patterns
        self.fault_indicator = fault_indicator
        self.relay_pulse_s = relay_pulse_s
        relay_pin = self.pinmap.get("relay")
        if relay_pulse_s > 0 and relay_pin is None:
            raise PinmapError(
                f"relay_pulse_s = {relay_pulse_s} but pin map {self.pinmap.source} has no [relay]"
            )
        self.green = LED(self.pinmap["green_led"].bcm, pin_factory=pin_factory)
        self.red = LED(self.pinmap["red_led"].bcm, pin_factory=pin_factory)
        self.buzzer = Buzzer(self.pinmap["buzzer"].bcm, pin_factory=pin_factory)
        self.relay: DigitalOutputDevice | None = None
        if relay_pin is not None and relay_pulse_s > 0:
            self.relay = DigitalOutputDevice(
                relay_pin.bcm,
                active_high=relay_pin.active_high,
                initial_value=False,
                pin_factory=pin_factory,
            )
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._idle = threading.Event()
        self._idle.set()
        self._pending: Pattern | None = None
        self._playing: Pattern | None = None
        self._fault = False
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="gpio-feedback", daemon=True)
        self._thread.start()

    def show(self, outcome: Outcome, message: str = "") -> None:
        """Start the outcome's pattern (interrupting any other) and return at once."""
        self.play(self.patterns[outcome])
        if outcome is Outcome.SUCCESS and self.relay is not None:
            # gpiozero's own background thread times the pulse; a following tap does not cut
            # a door latch short.
            self.relay.blink(on_time=self.relay_pulse_s, off_time=0, n=1, background=True)

    def play(self, pattern: Pattern) -> None:
        """Start any pattern (the doctor plays each one by name)."""
        with self._lock:
            if self._closed:
                return
            self._pending = pattern
            self._idle.clear()
        self._wake.set()

    def indicate_fault(self, on: bool) -> None:
        """Persistent silent red flash between taps, while taps cannot be recorded.

        A tap's pattern that is playing is never cut short by this; the indicator starts or
        stops once it ends.
        """
        with self._lock:
            if on == self._fault:
                return
            self._fault = on
            self._idle.clear()
            if self._playing is not None and self._playing is not self.fault_indicator:
                return
        self._wake.set()

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Block until nothing is playing (never true while the fault indicator is on)."""
        return self._idle.wait(timeout)

    def close(self) -> None:
        with self._lock:
            self._closed = True
        self._wake.set()
        self._thread.join(timeout=5)
        for device in (self.green, self.red, self.buzzer, self.relay):
            if device is not None:
                device.close()

    def _apply(self, step: Step) -> None:
        self.green.value = step.green
        self.red.value = step.red
        self.buzzer.value = step.buzzer

    def _play(self, pattern: Pattern) -> bool:
        """Play the steps; True when a newer request cut it short."""
        for step in pattern.steps:
            self._apply(step)
            if self._wake.wait(step.seconds):
                return True
        return False

    def _run(self) -> None:
        while True:
            self._wake.wait()
            with self._lock:
                self._wake.clear()
                if self._closed:
                    break
                pattern, self._pending = self._pending, None
                if pattern is None and self._fault:
                    pattern = self.fault_indicator
                self._playing = pattern
            if pattern is None:
                self._apply(_OFF)
                with self._lock:
                    if self._pending is None and not self._fault:
                        self._idle.set()
                continue
            if self._play(pattern):
                continue
            self._apply(_OFF)
            with self._lock:
                self._playing = None
                if self._fault or self._pending is not None:
                    self._wake.set()
                else:
                    self._idle.set()
        self._apply(_OFF)
