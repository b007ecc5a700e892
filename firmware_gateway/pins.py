"""The kiosk's LEDs, buzzer and relay, driven through gpiozero by patterns of timed steps.

A pattern is a tuple of steps (seconds, green, red, buzzer). A background thread plays them, so
`play` returns at once; a new pattern cuts the one playing short, because the elder in front of
the reader now is the one the lights must answer. A background pattern, if set, loops while
nothing else plays. Which pattern means what is the kiosk's business (kiosk.gpio_feedback);
this module only drives the pins of the pin map.

The buzzer is an *active* buzzer switched by an NPN transistor (hardware/README.md): it has one
pitch, so patterns differ by rhythm and length, never by tone.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from gpiozero import LED, Buzzer, DigitalOutputDevice
from gpiozero.pins import Factory

from firmware_gateway.pinmap import Pinmap, PinmapError, load_pinmap


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


_OFF = Step(0.0)


class PinPlayer:
    """Plays patterns on the pin map's green LED, red LED and buzzer; pulses the optional relay.

    `relay_pulse_s` > 0 drives the relay, which `pulse_relay` then closes for that long.
    `pin_factory` None uses gpiozero's own choice (GPIOZERO_PIN_FACTORY, or the Pi's default).
    """

    def __init__(
        self,
        pinmap: Pinmap | None = None,
        *,
        relay_pulse_s: float = 0.0,
        pin_factory: Factory | None = None,
    ) -> None:
        self.pinmap = pinmap if pinmap is not None else load_pinmap()
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
        self._background: Pattern | None = None
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="gpio-feedback", daemon=True)
        self._thread.start()

    def play(self, pattern: Pattern) -> None:
        """Start a pattern (interrupting any other) and return at once."""
        with self._lock:
            if self._closed:
                return
            self._pending = pattern
            self._idle.clear()
        self._wake.set()

    def pulse_relay(self) -> None:
        """Close the relay for `relay_pulse_s` (door latch, light); nothing if there is none."""
        if self.relay is not None:
            # gpiozero's own background thread times the pulse; a following tap does not cut
            # a door latch short.
            self.relay.blink(on_time=self.relay_pulse_s, off_time=0, n=1, background=True)

    def set_background(self, pattern: Pattern | None) -> None:
        """Loop `pattern` between other patterns (None: stop looping it).

        A pattern that is playing is never cut short by this; the background starts or stops
        once it ends.
        """
        with self._lock:
            if pattern is self._background:
                return
            previous, self._background = self._background, pattern
            self._idle.clear()
            if self._playing is not None and self._playing is not previous:
                return
        self._wake.set()

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Block until nothing is playing (never true while a background pattern is set)."""
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
                if pattern is None:
                    pattern = self._background
                self._playing = pattern
            if pattern is None:
                self._apply(_OFF)
                with self._lock:
                    if self._pending is None and self._background is None:
                        self._idle.set()
                continue
            if self._play(pattern):
                continue
            self._apply(_OFF)
            with self._lock:
                self._playing = None
                if self._background is not None or self._pending is not None:
                    self._wake.set()
                else:
                    self._idle.set()
        self._apply(_OFF)
