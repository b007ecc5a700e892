"""`warmcard kiosk` as a service: the feedback channels from settings, the kiosk under systemd's
watchdog, and the screen's idle status, until a stop signal."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from firmware_gateway.readers import open_reader
from firmware_gateway.settings import GatewaySettings
from kiosk.feedback import Feedback, LogFeedback, MultiFeedback
from kiosk.runtime import Kiosk
from kiosk.screen import ScreenFeedback
from kiosk.voice import VoiceFeedback
from warmcard.contract import Kind, Mode
from warmcard.watchdog import Watchdog

log = logging.getLogger("warmcard.gateway.cli")

# A kiosk loop silent for longer than this is hung; systemd then restarts the kiosk.
LOOP_STALL_S = 30.0


class TodayCount:
    """Today's check-ins (entrance) or meals (canteen) for the screen, from the outbox.

    Recounted only when a new event was recorded or the local day changed: a few hundred rows
    at most, read once per tap rather than once per second.
    """

    def __init__(self, kiosk: Kiosk) -> None:
        self.kiosk = kiosk
        self._key: tuple[int, int, str] | None = None
        self._count: int | None = None

    def __call__(self) -> int | None:
        policy = self.kiosk.policy
        if policy is None:
            return None
        day_start = policy.day_start_us(self.kiosk.clock.now_us())
        key = (day_start, self.kiosk.outbox.last_seq(), policy.config.mode.value)
        if key != self._key:
            counted = Kind.CHECK_IN if policy.config.mode is Mode.ENTRANCE else Kind.MEAL
            events = self.kiosk.outbox.events_since(day_start)
            self._count = sum(1 for event in events if event.kind is counted)
            self._key = key
        return self._count


def update_screen(screen: ScreenFeedback, kiosk: Kiosk, site_name: str, today: TodayCount) -> None:
    """The idle page's status from the kiosk; a failure here must not stop the kiosk."""
    try:
        policy = kiosk.policy
        config = policy.config if policy is not None else None
        screen.set_status(
            online=kiosk.uplink.connected,
            today=today(),
            # The local setting wins; else the registry's name (DeviceConfig), else the site id.
            site=site_name or (config.site_name or config.site_id if config else None),
            tz=config.tz if config else None,
            mode=config.mode if config else None,
        )
    except Exception:
        log.exception("screen status update failed")


class Channels:
    """The feedback channels a kiosk's settings ask for; the screen and voice need stopping."""

    def __init__(self, settings: GatewaySettings) -> None:
        self.screen: ScreenFeedback | None = None
        self.voice: VoiceFeedback | None = None
        channels: list[Feedback] = [LogFeedback()]
        try:
            if settings.gpio:
                from firmware_gateway.pinmap import load_pinmap
                from kiosk.gpio_feedback import GpioFeedback

                pins = load_pinmap(settings.pinmap)
                channels.append(GpioFeedback(pins, relay_pulse_s=settings.relay_pulse_s))
            if settings.screen_port:
                self.screen = ScreenFeedback(port=settings.screen_port, site=settings.site_name)
                channels.append(self.screen.start())
            if settings.voice_dir is not None:
                self.voice = VoiceFeedback(settings.voice_dir, settings.voice_player)
                channels.append(self.voice.start())
        except BaseException:
            self.stop()
            raise
        self.feedback = MultiFeedback(*channels)

    def stop(self) -> None:
        for channel in (self.screen, self.voice):
            if channel is not None:
                channel.stop()


@contextmanager
def kiosk_service(settings: GatewaySettings) -> Iterator[tuple[Kiosk, Channels]]:
    """A kiosk with the settings' reader and channels; stopped, with its channels, on exit."""
    channels = Channels(settings)
    try:
        kiosk = Kiosk(settings, open_reader(settings.reader), channels.feedback)
    except BaseException:
        channels.stop()
        raise
    if channels.screen is not None:
        channels.screen.attach(kiosk)  # the staff's list records meals through this kiosk
    try:
        yield kiosk, channels
    finally:
        kiosk.stop()
        channels.stop()


def run_kiosk(settings: GatewaySettings, stop: threading.Event) -> None:
    """Run one real kiosk until `stop` is set; systemd's watchdog is pinged while it turns.

    Raises WarmcardError (bad pin map, screen port taken, ...) before anything has started.
    """
    with kiosk_service(settings) as (kiosk, channels):
        kiosk.start()
        # systemd's watchdog is pinged only while every loop of the kiosk is turning.
        watchdog = Watchdog.from_environ()
        for name in kiosk.liveness():
            watchdog.register(name)
        watchdog.start()
        watchdog.ready(f"终端 {settings.device_id} 运行中 kiosk running")
        today = TodayCount(kiosk)
        try:
            while not stop.wait(1.0):
                now = time.monotonic()
                for name, last in kiosk.liveness().items():
                    if now - last < LOOP_STALL_S:
                        watchdog.beat(name)
                if channels.screen is not None:
                    update_screen(channels.screen, kiosk, settings.site_name, today)
        finally:
            watchdog.close()
