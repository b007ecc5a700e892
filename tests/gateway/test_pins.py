"""The pin player on gpiozero's MockFactory: patterns played step by step, cut short, looped."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from gpiozero.pins.mock import MockFactory

from firmware_gateway.pinmap import PinmapError
from firmware_gateway.pins import Pattern, PinPlayer, Step
from tests.gateway.pin_history import assert_history, clear, expected_history, pins

BLINK = Pattern("blink", "test", (Step(0.1, green=True, buzzer=True), Step(0.2, red=True)))
LONG = Pattern("long", "test", (Step(0.5, red=True),))


@pytest.fixture
def factory() -> Iterator[MockFactory]:
    factory = MockFactory()
    yield factory
    factory.close()


def test_play_returns_at_once_and_plays_every_step(factory: MockFactory) -> None:
    player = PinPlayer(pins(17, 27, 22), pin_factory=factory)
    try:
        clear(factory, 17, 27, 22)
        started = time.monotonic()
        player.play(BLINK)
        assert time.monotonic() - started < 0.02
        assert player.wait_idle(2)
        assert_history(factory.pin(17), expected_history(BLINK.steps, "green"))
        assert_history(factory.pin(27), expected_history(BLINK.steps, "red"))
        assert_history(factory.pin(22), expected_history(BLINK.steps, "buzzer"))
    finally:
        player.close()


def test_a_new_pattern_cuts_the_playing_one_short(factory: MockFactory) -> None:
    player = PinPlayer(pins(17, 27, 22), pin_factory=factory)
    try:
        clear(factory, 17, 27, 22)
        player.play(LONG)
        started = time.monotonic()
        time.sleep(0.2)
        player.play(BLINK)
        cut_at = time.monotonic() - started  # 0.2 s, or more on a loaded machine
        assert player.wait_idle(2)
        # Red: LONG from 0 until BLINK's first step turns it off when BLINK was played (well
        # before LONG's 0.5 s were up), then BLINK's red step.
        assert cut_at < LONG.steps[0].seconds - 0.1
        assert_history(
            factory.pin(27),
            [(0.0, False), (0.0, True), (cut_at, False), (0.1, True), (0.2, False)],
        )
    finally:
        player.close()


def test_background_loops_between_patterns_and_stops(factory: MockFactory) -> None:
    flash = Pattern("flash", "test", (Step(0.05, red=True), Step(0.15)))
    player = PinPlayer(pins(17, 27, 22), pin_factory=factory)
    try:
        clear(factory, 17, 27, 22)
        player.set_background(flash)
        time.sleep(0.32)
        assert not player.wait_idle(0)
        assert_history(
            factory.pin(27), [(0.0, False), (0.0, True), (0.05, False), (0.15, True), (0.05, False)]
        )
        player.set_background(None)
        assert player.wait_idle(1)
        assert factory.pin(27).state is False
    finally:
        player.close()


def test_relay_pulse_without_relay_pin_is_a_clear_error(factory: MockFactory) -> None:
    with pytest.raises(PinmapError, match=r"no \[relay\]"):
        PinPlayer(pins(17, 27, 22), relay_pulse_s=0.5, pin_factory=factory)


def test_pulse_relay_without_a_relay_does_nothing(factory: MockFactory) -> None:
    player = PinPlayer(pins(17, 27, 22, relay=23), pin_factory=factory)
    try:
        assert player.relay is None  # relay_pulse_s = 0: the relay is not driven
        player.pulse_relay()
        assert [s.state for s in factory.pin(23).states] == [False]
    finally:
        player.close()
