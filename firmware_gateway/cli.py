"""Commands of this package, added to `warmcard` by warmcard.cli: `kiosk` and `simulate`."""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path
from types import FrameType
from typing import Annotated

import typer

from firmware_gateway import doctor
from firmware_gateway.readers.cli import register_reader_commands
from warmcard.errors import WarmcardError
from warmcard.settings import MqttSettings

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
        """Run one real kiosk: reader, policy, outbox, uplink."""
        from firmware_gateway.gateway import Gateway
        from firmware_gateway.readers import open_reader
        from firmware_gateway.settings import GatewaySettings
        from kiosk.feedback import Feedback, LogFeedback, MultiFeedback
        from warmcard.watchdog import Watchdog

        stop = _stop_on_signals()
        try:
            settings = GatewaySettings.load(config)
            channels: list[Feedback] = [LogFeedback()]
            if settings.gpio:
                from firmware_gateway.feedback import GpioFeedback
                from firmware_gateway.pinmap import load_pinmap

                pins = load_pinmap(settings.pinmap)
                channels.append(GpioFeedback(pins, relay_pulse_s=settings.relay_pulse_s))
            gateway = Gateway(settings, open_reader(settings.reader), MultiFeedback(*channels))
        except WarmcardError as exc:
            raise _fail(exc) from None
        gateway.start()
        # systemd's watchdog is pinged only while every loop of the gateway is turning.
        watchdog = Watchdog.from_environ()
        for name in gateway.liveness():
            watchdog.register(name)
        watchdog.start()
        watchdog.ready(f"终端 {settings.device_id} 运行中 kiosk running")
        try:
            while not stop.wait(1.0):
                now = time.monotonic()
                for name, last in gateway.liveness().items():
                    if now - last < LOOP_STALL_S:
                        watchdog.beat(name)
        finally:
            watchdog.close()
            gateway.stop()

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
