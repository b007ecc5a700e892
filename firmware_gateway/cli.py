"""Commands of this package, added to `warmcard` by warmcard.cli: `kiosk` and `simulate`."""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from types import FrameType
from typing import Annotated

import typer

from warmcard.errors import WarmcardError
from warmcard.settings import MqttSettings


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
        from kiosk.feedback import LogFeedback

        stop = _stop_on_signals()
        try:
            settings = GatewaySettings.load(config)
            gateway = Gateway(settings, open_reader(settings.reader), LogFeedback())
        except WarmcardError as exc:
            raise _fail(exc) from None
        gateway.start()
        try:
            while not stop.wait(1.0):
                pass
        finally:
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
