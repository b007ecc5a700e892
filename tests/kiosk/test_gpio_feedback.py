"""The kiosk's LED and buzzer answers on gpiozero's MockFactory: each outcome's pattern checked on
the pins' recorded histories."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from gpiozero.pins.mock import MockFactory

from firmware_gateway.pinmap import load_pinmap
from firmware_gateway.pins import Pattern, Step
from kiosk.feedback import Feedback
from kiosk.gpio_feedback import FAULT_INDICATOR, PATTERNS, GpioFeedback
from kiosk.policy import Outcome
from tests.gateway.pin_history import assert_history, clear, expected_history, pins
from tests.support.paths import REPO

README = REPO / "hardware" / "README.md"


@pytest.fixture
def factory() -> Iterator[MockFactory]:
    factory = MockFactory()
    yield factory
    factory.close()


def test_pattern_table_is_exactly_the_documented_one() -> None:
    on = True
    assert PATTERNS[Outcome.SUCCESS].steps == (
        Step(0.1, green=on, buzzer=on),
        Step(0.4, green=on),
    )
    assert PATTERNS[Outcome.REPEAT].steps == (
        Step(0.05, green=on, buzzer=on),
        Step(0.15, green=on),
        Step(0.1),
        Step(0.05, green=on, buzzer=on),
        Step(0.15, green=on),
    )
    assert PATTERNS[Outcome.UNKNOWN].steps == (Step(0.8, red=on, buzzer=on), Step(0.2, red=on))
    assert (
        PATTERNS[Outcome.MEAL_REPEAT].steps
        == (
            Step(0.15, red=on, buzzer=on),
            Step(0.15, green=on),
        )
        * 3
    )
    assert PATTERNS[Outcome.FAULT].steps == (Step(0.3, red=on, buzzer=on), Step(0.4)) * 3
    assert FAULT_INDICATOR.steps == (Step(0.1, red=on), Step(1.9))
    assert set(PATTERNS) == set(Outcome), "every outcome needs a pattern"
    assert len({p.steps for p in PATTERNS.values()}) == len(PATTERNS), "patterns must differ"
    assert len({p.name for p in PATTERNS.values()}) == len(PATTERNS)
    for pattern in PATTERNS.values():
        assert any(s.buzzer for s in pattern.steps), f"{pattern.name}: elders may not see LEDs"


def test_each_outcome_plays_its_pattern_exactly(factory: MockFactory) -> None:
    # One feedback per outcome on its own pins, all at once, so the test takes the longest
    # pattern's time rather than the sum.
    players: dict[Outcome, tuple[GpioFeedback, tuple[int, int, int]]] = {}
    for i, outcome in enumerate(Outcome):
        numbers = (2 + 3 * i, 3 + 3 * i, 4 + 3 * i)
        players[outcome] = (GpioFeedback(pins(*numbers), pin_factory=factory), numbers)
    try:
        for _, numbers in players.values():
            clear(factory, *numbers)
        for outcome, (player, _) in players.items():
            player.show(outcome, "测试 test")
        for player, _ in players.values():
            assert player.wait_idle(5)
        for outcome, (_, (green, red, buzzer)) in players.items():
            steps = PATTERNS[outcome].steps
            assert_history(factory.pin(green), expected_history(steps, "green"))
            assert_history(factory.pin(red), expected_history(steps, "red"))
            assert_history(factory.pin(buzzer), expected_history(steps, "buzzer"))
    finally:
        for player, _ in players.values():
            player.close()


def test_show_returns_at_once_and_satisfies_the_protocol(factory: MockFactory) -> None:
    feedback = GpioFeedback(pins(17, 27, 22), pin_factory=factory)
    try:
        channel: Feedback = feedback
        started = time.monotonic()
        channel.show(Outcome.FAULT, "读卡器故障 reader fault")
        took = time.monotonic() - started
        assert took < 0.02, f"show blocked for {took:.3f} s"
        assert not feedback.wait_idle(0.05), "the fault pattern plays on after show returned"
        assert factory.pin(27).state is True  # red already on
        assert feedback.wait_idle(PATTERNS[Outcome.FAULT].seconds + 1)
        assert (factory.pin(17).state, factory.pin(27).state, factory.pin(22).state) == (
            False,
            False,
            False,
        )
    finally:
        feedback.close()


def test_a_new_outcome_interrupts_the_one_playing(factory: MockFactory) -> None:
    feedback = GpioFeedback(pins(17, 27, 22), pin_factory=factory)
    try:
        clear(factory, 17, 27, 22)
        feedback.show(Outcome.SUCCESS)
        time.sleep(0.2)  # mid-way through the 0.5 s success pattern
        feedback.show(Outcome.UNKNOWN)
        assert feedback.wait_idle(3)
        # Green: on, then cut off at 0.2 s. Red: on at 0.2 s for the full unknown pattern.
        assert_history(factory.pin(17), [(0.0, False), (0.0, True), (0.2, False)])
        assert_history(factory.pin(27), [(0.0, False), (0.2, True), (1.0, False)])
        # Buzzer: success's short beep, then unknown's long beep from 0.2 s.
        assert_history(
            factory.pin(22), [(0.0, False), (0.0, True), (0.1, False), (0.1, True), (0.8, False)]
        )
    finally:
        feedback.close()


def test_relay_pulses_on_success_only_and_respects_active_low(factory: MockFactory) -> None:
    feedback = GpioFeedback(pins(17, 27, 22, relay=23), relay_pulse_s=0.3, pin_factory=factory)
    try:
        relay = factory.pin(23)
        assert relay.state is True  # active-low module: high is off
        clear(factory, 23)
        feedback.show(Outcome.UNKNOWN)
        assert feedback.wait_idle(3)
        assert [s.state for s in relay.states] == [True], "no pulse for an unknown card"
        feedback.show(Outcome.SUCCESS)
        assert feedback.wait_idle(3)
        time.sleep(0.05)  # the pulse is timed by gpiozero's own thread
        # After the unknown pattern (1.0 s, relay untouched) the success pulse: low for 0.3 s.
        assert_history(relay, [(0.0, True), (1.0, False), (0.3, True)])
    finally:
        feedback.close()


def test_fault_indicator_flashes_between_taps_and_stops(factory: MockFactory) -> None:
    # A faster indicator than the real 2 s one, so the loop is seen twice in a third of a second.
    fast = Pattern("fast", "test", (Step(0.05, red=True), Step(0.15)))
    feedback = GpioFeedback(pins(17, 27, 22), pin_factory=factory, fault_indicator=fast)
    try:
        clear(factory, 17, 27, 22)
        feedback.indicate_fault(True)
        time.sleep(0.32)  # on 0-0.05, on again 0.2-0.25; the third flash starts at 0.4
        assert not feedback.wait_idle(0)
        assert_history(
            factory.pin(27), [(0.0, False), (0.0, True), (0.05, False), (0.15, True), (0.05, False)]
        )
        assert [s.state for s in factory.pin(22).states] == [False]  # silent
        clear(factory, 17)
        feedback.show(Outcome.SUCCESS)  # a tap still gets its answer...
        time.sleep(0.05)
        feedback.indicate_fault(False)  # ...in full, even when the fault clears meanwhile
        assert feedback.wait_idle(2)
        assert_history(factory.pin(17), [(0.0, False), (0.0, True), (0.5, False)])
        assert factory.pin(27).state is False
    finally:
        feedback.close()


def test_default_pinmap_drives_the_documented_pins(factory: MockFactory) -> None:
    pinmap = load_pinmap()
    feedback = GpioFeedback(pinmap, pin_factory=factory)
    try:
        feedback.show(Outcome.UNKNOWN)
        time.sleep(0.1)
        assert factory.pin(pinmap["red_led"].bcm).state is True
        assert factory.pin(pinmap["buzzer"].bcm).state is True
        assert factory.pin(pinmap["green_led"].bcm).state is False
    finally:
        feedback.close()


def test_hardware_readme_lists_every_feedback_pattern() -> None:
    text = README.read_text()
    for pattern in (*PATTERNS.values(), FAULT_INDICATOR):
        assert f"| {pattern.name} | {pattern.description} |" in text, pattern.name
