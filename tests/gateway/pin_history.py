"""gpiozero MockFactory helpers: a pin map on chosen pins, and pin histories compared in time."""

from __future__ import annotations

import math

from gpiozero.pins.mock import MockFactory, MockPin

from firmware_gateway.pinmap import Pinmap, parse_pinmap
from firmware_gateway.pins import Step

TOLERANCE_S = 0.05  # gpiozero's own MockPin tolerance: the scheduler, not the code, is the limit


def pins(green: int, red: int, buzzer: int, relay: int | None = None) -> Pinmap:
    data: dict[str, object] = {
        "green_led": {"bcm": green},
        "red_led": {"bcm": red},
        "buzzer": {"bcm": buzzer},
    }
    if relay is not None:
        data["relay"] = {"bcm": relay, "active_high": False}
    return parse_pinmap(data)


def expected_history(steps: tuple[Step, ...], attr: str) -> list[tuple[float, bool]]:
    """(seconds since the previous change, new state) for one output, as MockPin records it."""
    history = [(0.0, False)]
    state, since = False, 0.0
    for step in (*steps, Step(0.0)):  # every pattern ends with everything off
        value = getattr(step, attr)
        if value != state:
            history.append((since, value))
            state, since = value, 0.0
        since += step.seconds
    return history


def assert_history(pin: MockPin, expected: list[tuple[float, bool]]) -> None:
    actual = [(s.timestamp, s.state) for s in pin.states]
    assert [s for _, s in actual] == [s for _, s in expected], (actual, expected)
    for (t_actual, _), (t_expected, _) in zip(actual, expected, strict=True):
        assert math.isclose(t_actual, t_expected, abs_tol=TOLERANCE_S), (actual, expected)


def clear(factory: MockFactory, *numbers: int) -> None:
    for n in numbers:
        factory.pin(n).clear_states()
