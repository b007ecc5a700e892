"""`warmcard provision`: the command; the work is in warmcard.command.provision."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from warmcard.command.pki import init_ca, issue_server_cert
from warmcard.command.provision import (
    DEFAULT_BROKER_DIR,
    DEFAULT_DYNSEC_FILE,
    DEFAULT_KIOSK_DIR,
    DEVICE_PORT,
    RESTART_HINT,
    SERVICE_PORT,
    BrokerAddress,
    BrokerFiles,
    ProvisionError,
    init_broker,
    provision_device,
    provision_service,
    revoke,
    share_with_broker,
    write_bundle,
)
from warmcard.errors import WarmcardError


def provision_command(
    name: Annotated[
        str | None,
        typer.Argument(help="设备编号 device id (= certificate CN), or a service with --service."),
    ] = None,
    ca_init: Annotated[
        bool,
        typer.Option(
            "--ca-init", help="Create the device CA and the plugin's config (once); broker cert."
        ),
    ] = False,
    server_name: Annotated[
        list[str] | None,
        typer.Option("--server-name", help="Broker DNS name or IP for its cert; repeatable."),
    ] = None,
    revoke_: Annotated[
        bool, typer.Option("--revoke", help="Take the user off the broker now.")
    ] = False,
    service: Annotated[
        bool, typer.Option("--service", help="A cloud service user (password, loopback).")
    ] = False,
    broker_dir: Annotated[Path, typer.Option(help="CA, certs, admin secret.")] = DEFAULT_BROKER_DIR,
    roles: Annotated[
        Path | None, typer.Option(help="Service roles (default: BROKER_DIR/dynsec-roles.json).")
    ] = None,
    dynsec_file: Annotated[
        Path, typer.Option(help="The plugin's config (plugin_opt_config_file).")
    ] = DEFAULT_DYNSEC_FILE,
    broker_port: Annotated[
        int, typer.Option(help="The broker's loopback listener, for $CONTROL.")
    ] = SERVICE_PORT,
    device_port: Annotated[
        int, typer.Option(help="The broker's device listener (ends a revoked session).")
    ] = DEVICE_PORT,
    host: Annotated[str | None, typer.Option(help="Broker address the client uses.")] = None,
    port: Annotated[int | None, typer.Option(help="Default: 8883 devices, 1883 services.")] = None,
    out: Annotated[
        Path | None, typer.Option(help="Bundle folder (default: ./provision-NAME).")
    ] = None,
    kiosk_dir: Annotated[
        Path, typer.Option(help="Bundle's place on the kiosk.")
    ] = DEFAULT_KIOSK_DIR,
) -> None:
    """开通设备 Provision a kiosk (client cert + role) or a service; revoke; make the CA."""
    files = BrokerFiles.at(broker_dir, roles, dynsec_file)
    broker = BrokerAddress("127.0.0.1", broker_port, device_port)
    try:
        if ca_init:
            made = init_ca(files.ca)
            issued = issue_server_cert(files.ca, server_name or ["localhost", "127.0.0.1"])
            share_with_broker(files.ca.server_key)
            state = "已创建 Created" if made else "已存在 Kept existing"
            typer.echo(f"{state} device CA {files.ca.ca_cert}")
            serial = f"{issued.serial:x}"
            typer.echo(f"已签发 Issued broker certificate {files.ca.server_cert} (serial {serial})")
            if init_broker(files):
                typer.echo(f"已写入 Wrote the security plugin's first config {files.dynsec_file}")
            typer.echo(
                f"保管好 Keep {files.ca.ca_key} offline-safe: it can mint device certificates."
            )
            typer.echo(RESTART_HINT)
            if name is None:
                return
        if name is None:
            raise ProvisionError("请给出设备编号 give a device id (or --ca-init)")
        if revoke_:
            if revoke(files, name, broker):
                typer.echo(f"已吊销 Revoked {name}: disconnected, session ended, no rights left.")
            else:
                typer.echo(f"无此用户 {name} was not known to the broker; nothing to do.")
            return
        if service:
            creds = provision_service(
                files, name, host=host or "127.0.0.1", port=port or SERVICE_PORT, broker=broker
            )
        else:
            if not host:
                raise ProvisionError("请给出 --host: the broker address kiosks connect to")
            creds = provision_device(
                files,
                name,
                host=host,
                port=port or DEVICE_PORT,
                kiosk_dir=kiosk_dir,
                broker=broker,
            )
        bundle = out or Path(f"provision-{name}")
        write_bundle(creds, bundle)
    except WarmcardError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None
    where = "its service's config" if service else f"{kiosk_dir}/ on the kiosk"
    typer.echo(f"已开通 Provisioned {name} (in effect now). Bundle: {bundle}/ (copy to {where})")
    if creds.password is not None:
        typer.echo("密码只显示这一次 The password is shown only here and in the bundle:\n")
    typer.echo(creds.mqtt_toml)


def register(app: typer.Typer) -> None:
    """Add `warmcard provision` to the app."""
    app.command("provision")(provision_command)
