"""`warmcard doctor`: every check in turn, printed as it comes, and the command itself."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Annotated

import typer

from firmware_gateway.doctor.broker import REGISTRATION, check_cloud
from firmware_gateway.doctor.checks import (
    check_clock,
    check_config,
    check_disk,
    check_feedback,
    check_reader,
)
from firmware_gateway.doctor.deps import DoctorDeps
from firmware_gateway.doctor.results import CheckResult, Status
from firmware_gateway.pins import Pattern
from firmware_gateway.settings import GatewaySettings

DEFAULT_CONFIG = Path("/etc/warmcard/kiosk.toml")

# A check the application above adds (the kiosk's screen and speaker): its name, for the line
# printed when there is no valid config to run it with, and the check itself.
ExtraCheck = tuple[str, Callable[[GatewaySettings, DoctorDeps], CheckResult]]


def run_doctor(
    config: Path,
    deps: DoctorDeps | None = None,
    *,
    tap: bool = True,
    tap_timeout_s: float = 15.0,
    extra: Sequence[ExtraCheck] = (),
) -> list[CheckResult]:
    """Run every check, printing each result as it comes; a failed config skips the rest."""
    deps = deps or DoctorDeps()
    results: list[CheckResult] = []

    def report(result: CheckResult) -> None:
        results.append(result)
        for line in result.lines():
            deps.say(line)

    config_result, settings = check_config(config)
    report(config_result)
    if settings is None:
        for name in ("读卡器 Reader", "灯和蜂鸣器 LEDs and buzzer",
                     *(name for name, _ in extra), "存储 Outbox disk", "服务器 Broker",
                     REGISTRATION):  # fmt: skip
            report(CheckResult(name, Status.SKIP, "配置无效 no valid config"))
        report(check_clock(deps))
    else:
        for result in check_reader(settings, deps, tap=tap, tap_timeout_s=tap_timeout_s):
            report(result)
        report(check_feedback(settings, deps))
        for _, check in extra:
            report(check(settings, deps))
        report(check_clock(deps))
        report(check_disk(settings, deps))
        for result in check_cloud(settings, deps):
            report(result)
    failed = [r.name for r in results if r.status is Status.FAIL]
    deps.say(
        f"有 {len(failed)} 项失败 {len(failed)} failed: {', '.join(failed)}"
        if failed
        else "全部通过 all checks passed"
    )
    return results


def register(
    app: typer.Typer, patterns: Sequence[Pattern] = (), extra: Sequence[ExtraCheck] = ()
) -> None:
    """Add `warmcard doctor`; it plays `patterns` on the LEDs and buzzer (none: a pin test) and
    runs the `extra` checks of the application (the kiosk's screen and speaker)."""

    @app.command()
    def doctor(
        config: Annotated[
            Path, typer.Option("--config", "-c", help="Kiosk config file.")
        ] = DEFAULT_CONFIG,
        no_tap: Annotated[bool, typer.Option("--no-tap", help="Skip the live card read.")] = False,
        tap_timeout: Annotated[
            float, typer.Option(help="Seconds to wait for the live card read.")
        ] = 15.0,
    ) -> None:
        """检查本机 Check this kiosk: config, reader, LEDs, screen, speaker, clock, disk, broker,
        registration in the cloud."""
        deps = DoctorDeps(patterns=tuple(patterns)) if patterns else DoctorDeps()
        results = run_doctor(
            config, deps, tap=not no_tap, tap_timeout_s=tap_timeout, extra=tuple(extra)
        )
        raise typer.Exit(1 if any(r.status is Status.FAIL for r in results) else 0)
