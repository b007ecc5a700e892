"""The kiosk's commands, added to `warmcard` by warmcard.command.cli: kiosk, voice, simulate.

Imports are inside the commands: `warmcard` loads this module for every command it runs.
"""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from types import FrameType
from typing import Annotated

import typer

from warmcard.errors import WarmcardError


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
    """Add the kiosk's commands to the `warmcard` app."""

    @app.command("kiosk")
    def kiosk(
        config: Annotated[Path, typer.Option("--config", help="Gateway settings (TOML).")] = Path(
            "/etc/warmcard/kiosk.toml"
        ),
    ) -> None:
        """Run one real kiosk: reader, policy, outbox, uplink, screen and voice."""
        from firmware_gateway.settings import GatewaySettings
        from kiosk.service import run_kiosk

        stop = _stop_on_signals()
        try:
            run_kiosk(GatewaySettings.load(config), stop)
        except WarmcardError as exc:
            raise _fail(exc) from None

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
        """Play every prompt once, in turn, naming each: to check the speaker and volume.

        Exits 1 when any prompt is missing or did not play (no sound card, wrong -D device)."""
        import shlex

        from kiosk.voice import play_each

        failed = play_each(clip_dir, shlex.split(player), typer.echo)
        if failed:
            typer.echo(
                f"错误 error: {len(failed)} 条提示没有播出 prompt(s) did not play: "
                + "; ".join(failed),
                err=True,
            )
            raise typer.Exit(1)

    @app.command("simulate")
    def simulate(
        run_dir: Annotated[Path, typer.Option("--run-dir", help="Data dirs of the kiosks.")],
        device: Annotated[list[str], typer.Option("--device", help="Device id; repeatable.")],
        broker_host: Annotated[str, typer.Option("--broker-host")] = "127.0.0.1",
        broker_port: Annotated[int, typer.Option("--broker-port")] = 1883,
        seed: Annotated[int, typer.Option("--seed", help="Same seed, same day.")] = 1,
        heartbeat_s: Annotated[float, typer.Option("--heartbeat-s")] = 10.0,
        absent: Annotated[
            list[str] | None, typer.Option("--absent", help="A card that never taps; repeatable.")
        ] = None,
        ready_timeout: Annotated[
            float, typer.Option("--ready-timeout", help="Seconds to wait for config and roster.")
        ] = 60.0,
    ) -> None:
        """Run simulated kiosks that play a day of taps, until Ctrl-C or SIGTERM."""
        from kiosk.simulation import Simulation
        from warmcard.settings import MqttSettings

        stop = _stop_on_signals()
        try:
            simulation = Simulation(
                run_dir,
                device,
                MqttSettings(host=broker_host, port=broker_port),
                seed=seed,
                heartbeat_s=heartbeat_s,
                absent=absent or (),
            )
            simulation.run(stop, ready_timeout)
        except WarmcardError as exc:
            raise _fail(exc) from None
