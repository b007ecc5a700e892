"""This package's commands, added to `warmcard` by warmcard.command.cli: kiosk, voice, simulate."""

from __future__ import annotations

import logging
import signal
import threading
import time
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Annotated

import typer

from firmware_gateway import doctor
from firmware_gateway.readers.cli import register_reader_commands
from warmcard.errors import WarmcardError
from warmcard.settings import MqttSettings

if TYPE_CHECKING:
    from firmware_gateway.gateway import Gateway
    from kiosk.screen import ScreenFeedback

log = logging.getLogger("warmcard.gateway.cli")

# A gateway loop silent for longer than this is hung; systemd then restarts the kiosk.
LOOP_STALL_S = 30.0


def _stop_on_signals() -> threading.Event:
    """An event set by SIGTERM (systemd stop) or SIGINT (Ctrl-C), for a clean shutdown."""
    stop = threading.Event()

    def handler(signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
    return stop


def _fail(exc: WarmcardError) -> typer.Exit:
    typer.echo(f"error: {exc}", err=True)
    return typer.Exit(2)


class _TodayCount:
    """Today's check-ins (entrance) or meals (canteen) for the screen, from the outbox.

    Recounted only when a new event was recorded or the local day changed: a few hundred rows
    at most, read once per tap rather than once per second.
    """

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway
        self._key: tuple[int, int, str] | None = None
        self._count: int | None = None

    def __call__(self) -> int | None:
        from warmcard.contract import Kind, Mode

        policy = self.gateway.policy
        if policy is None:
            return None
        day_start = policy.day_start_us(self.gateway.clock.now_us())
        key = (day_start, self.gateway.outbox.last_seq(), policy.config.mode.value)
        if key != self._key:
            counted = Kind.CHECK_IN if policy.config.mode is Mode.ENTRANCE else Kind.MEAL
            events = self.gateway.outbox.events_since(day_start)
            self._count = sum(1 for event in events if event.kind is counted)
            self._key = key
        return self._count


def _update_screen(
    screen: ScreenFeedback, gateway: Gateway, site_name: str, today: _TodayCount
) -> None:
    """The idle page's status from the gateway; a failure here must not stop the kiosk."""
    try:
        policy = gateway.policy
        config = policy.config if policy is not None else None
        screen.set_status(
            online=gateway.uplink.connected,
            today=today(),
            site=site_name or (config.site_id if config else None),
            tz=config.tz if config else None,
            mode=config.mode if config else None,
        )
    except Exception:
        log.exception("screen status update failed")


def register(app: typer.Typer) -> None:
    """Add this package's commands to the `warmcard` app."""
    doctor.register(app)
    register_reader_commands(app)

    @app.command("kiosk")
    def kiosk(
        config: Annotated[Path, typer.Option("--config", help="Gateway settings (TOML).")] = Path(
            "/etc/warmcard/kiosk.toml"
        ),
    ) -> None:
        """Run one real kiosk: reader, policy, outbox, uplink, screen and voice."""
        from firmware_gateway.gateway import Gateway
        from firmware_gateway.readers import open_reader
        from firmware_gateway.settings import GatewaySettings
        from kiosk.feedback import Feedback, LogFeedback, MultiFeedback
        from kiosk.screen import ScreenFeedback
        from kiosk.voice import VoiceFeedback
        from warmcard.watchdog import Watchdog

        stop = _stop_on_signals()
        screen: ScreenFeedback | None = None
        voice: VoiceFeedback | None = None
        try:
            settings = GatewaySettings.load(config)
            channels: list[Feedback] = [LogFeedback()]
            if settings.gpio:
                from firmware_gateway.feedback import GpioFeedback
                from firmware_gateway.pinmap import load_pinmap

                pins = load_pinmap(settings.pinmap)
                channels.append(GpioFeedback(pins, relay_pulse_s=settings.relay_pulse_s))
            if settings.screen_port:
                screen = ScreenFeedback(port=settings.screen_port, site=settings.site_name)
                channels.append(screen.start())
            if settings.voice_dir is not None:
                voice = VoiceFeedback(settings.voice_dir, settings.voice_player)
                channels.append(voice.start())
            gateway = Gateway(settings, open_reader(settings.reader), MultiFeedback(*channels))
        except WarmcardError as exc:
            for channel in (screen, voice):
                if channel is not None:
                    channel.stop()
            raise _fail(exc) from None
        gateway.start()
        # systemd's watchdog is pinged only while every loop of the gateway is turning.
        watchdog = Watchdog.from_environ()
        for name in gateway.liveness():
            watchdog.register(name)
        watchdog.start()
        watchdog.ready(f"终端 {settings.device_id} 运行中 kiosk running")
        today = _TodayCount(gateway)
        try:
            while not stop.wait(1.0):
                now = time.monotonic()
                for name, last in gateway.liveness().items():
                    if now - last < LOOP_STALL_S:
                        watchdog.beat(name)
                if screen is not None:
                    _update_screen(screen, gateway, settings.site_name, today)
        finally:
            watchdog.close()
            gateway.stop()
            for channel in (screen, voice):
                if channel is not None:
                    channel.stop()

    voice_app = typer.Typer(help="Spoken prompts: render them, play them to test the speaker.")
    app.add_typer(voice_app, name="voice")

    @voice_app.command("render")
    def voice_render(
        out: Annotated[Path, typer.Option("--out", help="Folder for the WAV clips.")] = Path(
            "/var/lib/warmcard/voice"
        ),
    ) -> None:
        """Render the prompts with espeak-ng (Mandarin). A site's own recordings go in OUT/site/
        under the same names; rendering never overwrites them."""
        from kiosk.voice import render_clips, wav_seconds

        try:
            for path in render_clips(out):
                typer.echo(f"{path}  {wav_seconds(path):.2f} s")
        except WarmcardError as exc:
            raise _fail(exc) from None

    @voice_app.command("play")
    def voice_play(
        clip_dir: Annotated[Path, typer.Option("--dir", help="The voice_dir.")] = Path(
            "/var/lib/warmcard/voice"
        ),
        player: Annotated[
            str, typer.Option("--player", help="Player command, as in voice_player.")
        ] = "aplay -q",
    ) -> None:
        """Play every prompt once, in turn, naming each: to check the speaker and volume."""
        import shlex
        import subprocess

        from kiosk.voice import CLIPS, VoiceFeedback

        voice = VoiceFeedback(clip_dir, shlex.split(player))
        for name in CLIPS:
            path = voice.clip_path(name)
            typer.echo(f"{name}: {path or '(missing: silent)'}")
            if path is not None:
                subprocess.run([*voice.player, str(path)], check=False)

    @app.command("simulate")
    def simulate(
        run_dir: Annotated[Path, typer.Option("--run-dir", help="Data dirs of the kiosks.")],
        device: Annotated[list[str], typer.Option("--device", help="Device id; repeatable.")],
        broker_host: Annotated[str, typer.Option("--broker-host")] = "127.0.0.1",
        broker_port: Annotated[int, typer.Option("--broker-port")] = 1883,
        seed: Annotated[int, typer.Option("--seed", help="Same seed, same day.")] = 1,
        heartbeat_s: Annotated[float, typer.Option("--heartbeat-s")] = 10.0,
        ready_timeout: Annotated[
            float, typer.Option("--ready-timeout", help="Seconds to wait for config and roster.")
        ] = 60.0,
    ) -> None:
        """Run simulated kiosks that play a day of taps, until Ctrl-C or SIGTERM."""
        from kiosk.simulation import Simulation

        stop = _stop_on_signals()
        try:
            simulation = Simulation(
                run_dir,
                device,
                MqttSettings(host=broker_host, port=broker_port),
                seed=seed,
                heartbeat_s=heartbeat_s,
            )
            simulation.run(stop, ready_timeout)
        except WarmcardError as exc:
            raise _fail(exc) from None
