"""`warmcard reconcile`: gaps and conflicts per device and day; exit 1 when there are any."""

from __future__ import annotations

import json
import logging
import tomllib
from datetime import datetime
from pathlib import Path
from typing import Annotated
from zoneinfo import ZoneInfo

import typer

from warmcard.settings import MqttSettings, SettingsError

log = logging.getLogger(__name__)


def _mqtt_from(path: Path) -> MqttSettings:
    """The `[mqtt]` section of a TOML file (as `warmcard provision NAME --service` prints it)."""
    try:
        data = tomllib.loads(path.read_text())
        return MqttSettings.model_validate(data.get("mqtt", {}))
    except (OSError, tomllib.TOMLDecodeError, ValueError) as exc:
        raise SettingsError(f"cannot use [mqtt] of {path}: {exc}") from None


def register(app: typer.Typer) -> None:
    """Add `warmcard reconcile`."""

    @app.command("reconcile")
    def reconcile(
        config: Annotated[Path | None, typer.Option("--config", "-c", help="ingest.toml")] = None,
        device: Annotated[
            list[str] | None, typer.Option("--device", help="device id (repeatable)")
        ] = None,
        site: Annotated[str | None, typer.Option("--site", help="all devices of a site")] = None,
        day: Annotated[str | None, typer.Option("--day", help="YYYY-MM-DD (default today)")] = None,
        from_: Annotated[str | None, typer.Option("--from", help="first day, YYYY-MM-DD")] = None,
        to: Annotated[str | None, typer.Option("--to", help="last day, YYYY-MM-DD")] = None,
        as_json: Annotated[bool, typer.Option("--json", help="JSON output")] = False,
        request_resend: Annotated[
            bool, typer.Option("--request-resend", help="ask kiosks to re-send every gap")
        ] = False,
        mqtt_config: Annotated[
            Path | None,
            typer.Option(
                "--mqtt-config",
                help="TOML with the \\[mqtt] of the operator user, for heartbeats and resend",
            ),
        ] = None,
        status_wait_s: Annotated[float, typer.Option("--status-wait-s", min=0)] = 2.0,
    ) -> None:
        """Per device and local day: taps stored, missing seqs, conflicts. Exit 0 clean, 1 not."""
        from cloud_ingest.errors import IngestError
        from cloud_ingest.ops.reconcile import check, render_text, resolve_days
        from cloud_ingest.ops.resend import commands_for, publish_commands
        from cloud_ingest.ops.statusread import ToolLink
        from cloud_ingest.pipeline.conflicts import SeenIndex
        from cloud_ingest.pipeline.influx import InfluxV1
        from cloud_ingest.registry.store import Registry
        from cloud_ingest.settings import IngestSettings

        def fail(message: str) -> typer.Exit:
            typer.echo(message, err=True)
            return typer.Exit(2)

        try:
            settings = IngestSettings.load(config)
            mqtt = _mqtt_from(mqtt_config) if mqtt_config else settings.mqtt
        except SettingsError as exc:
            raise fail(f"配置错误 Config error: {exc}") from None
        try:
            today = datetime.now(ZoneInfo(settings.tz)).date()
            first, last = resolve_days(day, from_, to, today)
        except ValueError as exc:
            raise fail(str(exc)) from None

        registry = Registry(settings.store("registry"))
        try:
            if device:
                device_ids = list(dict.fromkeys(device))
            elif site:
                device_ids = [d.device_id for d in registry.devices(site)]
                if not device_ids:
                    raise fail(f"站点没有设备 Site {site} has no devices in the registry")
            else:
                device_ids = [d.device_id for d in registry.devices()]

            # Never connect under an ingest worker's username (session takeover): only with
            # --mqtt-config, or to a broker without authentication (development).
            use_mqtt = mqtt_config is not None or mqtt.username is None
            if request_resend and not use_mqtt:
                raise fail(
                    "需要 --mqtt-config Give --mqtt-config with the operator's [mqtt] section "
                    "(warmcard provision operator --service); ingest's own user must not be used"
                )
            statuses = {}
            link = None
            if use_mqtt and (status_wait_s > 0 or request_resend):
                try:
                    link = ToolLink(mqtt).__enter__()
                    statuses = link.statuses(device_ids, status_wait_s)
                except (OSError, ConnectionError) as exc:
                    link = None
                    if request_resend:
                        raise fail(f"无法连接消息服务器 Cannot reach the broker: {exc}") from None
                    typer.echo(f"警告 Warning: no heartbeats ({exc})", err=True)
            elif not use_mqtt:
                typer.echo(
                    "警告 Warning: no heartbeats read (give --mqtt-config); tails not checked",
                    err=True,
                )

            seen_path = settings.seen_index_file
            seen = SeenIndex(seen_path) if seen_path.exists() else None
            storage = InfluxV1(settings.influx)
            try:
                report = check(
                    storage,
                    registry,
                    device_ids,
                    (first, last),
                    statuses=statuses,
                    seen=seen,
                    default_tz=settings.tz,
                )
            except (IngestError, ValueError) as exc:
                raise fail(f"对账失败 Reconciliation failed: {exc}") from None
            finally:
                storage.close()
                if seen is not None:
                    seen.close()

            requested = []
            if request_resend and link is not None:
                requested = commands_for(report.gaps)
                publish_commands(link, requested)
            if link is not None:
                link.close()
        finally:
            registry.close()

        if as_json:
            doc = report.as_json()
            doc["resend_requests"] = [c.model_dump() for c in requested]
            typer.echo(json.dumps(doc, ensure_ascii=False, indent=1))
        else:
            typer.echo(render_text(report))
            for c in requested:
                typer.echo(
                    f"已请求重发 Resend requested: {c.device_id} seq {c.from_seq}-{c.to_seq} "
                    f"({c.request_id})"
                )
        raise typer.Exit(0 if report.clean else 1)
