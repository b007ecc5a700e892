"""`warmcard provision`: broker credentials for kiosks and cloud services, and the device CA.

Runs on the broker host, as root, against the broker directory that deploy/mosquitto/mosquitto.conf
points at (/etc/mosquitto/warmcard). docs/broker.md is the administrator's guide.
"""

from __future__ import annotations

import fcntl
import grp
import os
import re
import secrets
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer

from warmcard.command.pki import (
    CaFiles,
    init_ca,
    issue_device_cert,
    issue_server_cert,
    write_private,
)
from warmcard.errors import WarmcardError
from warmcard.ids import DEVICE_ID_RE

DEFAULT_BROKER_DIR = Path("/etc/mosquitto/warmcard")
DEFAULT_KIOSK_DIR = Path("/etc/warmcard/mqtt")
DEVICE_PORT = 8883
SERVICE_PORT = 1883
BROKER_GROUP = "mosquitto"
RELOAD_HINT = "重新加载 Reload the broker: systemctl reload mosquitto  (sends SIGHUP)"
_ACL_USER_RE = re.compile(r"^\s*user\s+(\S+)\s*$")


class ProvisionError(WarmcardError):
    """Provisioning refused or failed; the message says what to do next."""


@dataclass(frozen=True)
class BrokerFiles:
    """The broker directory: password file, ACL, CA and server certificate."""

    broker_dir: Path
    acl: Path

    @classmethod
    def at(cls, broker_dir: Path, acl: Path | None = None) -> BrokerFiles:
        return cls(Path(broker_dir), Path(acl) if acl else Path(broker_dir) / "acl")

    @property
    def passwd(self) -> Path:
        return self.broker_dir / "passwd"

    @property
    def ca(self) -> CaFiles:
        return CaFiles(self.broker_dir)


@dataclass(frozen=True)
class Credentials:
    """What one provisioning run hands out; the password exists nowhere else in clear."""

    username: str
    password: str
    mqtt_toml: str
    ca_pem: bytes | None = None
    cert_pem: bytes | None = None
    key_pem: bytes | None = None


def new_password() -> str:
    """192 random bits, URL-safe: no quoting trouble in TOML or shells."""
    return secrets.token_urlsafe(24)


def acl_users(acl: Path) -> set[str]:
    """The service users the ACL names with `user` lines (they are never device ids)."""
    try:
        text = acl.read_text()
    except OSError as exc:
        raise ProvisionError(
            f"读不到 ACL cannot read the ACL {acl} ({exc.strerror}); install "
            "deploy/mosquitto/acl there or pass --acl"
        ) from None
    return {m.group(1) for line in text.splitlines() if (m := _ACL_USER_RE.match(line))}


def _share_with_broker(path: Path) -> None:
    """Mosquitto reads the password file and its key after dropping root: give it group read."""
    if os.geteuid() != 0:
        return
    try:
        gid = grp.getgrnam(BROKER_GROUP).gr_gid
    except KeyError:
        return
    os.chown(path, 0, gid)
    os.chmod(path, 0o640)


@contextmanager
def _locked(files: BrokerFiles) -> Iterator[None]:
    """One provisioning run at a time: mosquitto_passwd rewrites the whole file."""
    files.broker_dir.mkdir(parents=True, exist_ok=True)
    with (files.broker_dir / ".provision.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _mosquitto_passwd() -> str:
    binary = shutil.which("mosquitto_passwd") or "/usr/bin/mosquitto_passwd"
    if not Path(binary).exists():
        raise ProvisionError("找不到 mosquitto_passwd not found; apt-get install mosquitto")
    return binary


def set_password(files: BrokerFiles, username: str, password: str) -> None:
    """Add or replace a user in the password file (hashed by mosquitto_passwd, PBKDF2-SHA512)."""
    if not files.passwd.exists():
        write_private(files.passwd, b"")
    # The password goes through stdin, twice (it asks to re-enter), never on the command line
    # where `ps` would show it.
    proc = subprocess.run(
        [_mosquitto_passwd(), str(files.passwd), username],
        input=f"{password}\n{password}\n".encode(),
        capture_output=True,
        check=False,
    )
    if proc.returncode != 0:
        raise ProvisionError(
            f"mosquitto_passwd failed for {username}: {proc.stderr.decode(errors='replace')}"
        )
    _share_with_broker(files.passwd)


def password_users(files: BrokerFiles) -> set[str]:
    if not files.passwd.exists():
        return set()
    lines = files.passwd.read_text().splitlines()
    return {line.split(":", 1)[0] for line in lines if ":" in line}


def remove_password(files: BrokerFiles, username: str) -> bool:
    """Delete a user from the password file; False when it was not there."""
    if username not in password_users(files):
        return False
    proc = subprocess.run(
        [_mosquitto_passwd(), "-D", str(files.passwd), username],
        capture_output=True,
        check=False,
    )
    if proc.returncode != 0:
        raise ProvisionError(
            f"mosquitto_passwd -D failed for {username}: {proc.stderr.decode(errors='replace')}"
        )
    return True


def mqtt_toml(
    *,
    username: str,
    password: str,
    host: str,
    port: int,
    tls: bool,
    kiosk_dir: Path,
) -> str:
    """The [mqtt] section (warmcard.settings.MqttSettings) for the device's or service's TOML."""
    lines = [
        "[mqtt]",
        f'host = "{host}"',
        f"port = {port}",
        f'username = "{username}"',
        f'password = "{password}"',
        f"tls = {'true' if tls else 'false'}",
    ]
    if tls:
        lines += [
            f'ca_file = "{kiosk_dir / "ca.crt"}"',
            f'cert_file = "{kiosk_dir / "device.crt"}"',
            f'key_file = "{kiosk_dir / "device.key"}"',
        ]
    return "\n".join(lines) + "\n"


def _check_device_id(files: BrokerFiles, device_id: str) -> None:
    if not DEVICE_ID_RE.fullmatch(device_id):
        raise ProvisionError(
            f"设备编号无效 invalid device id {device_id!r}: 2-63 of [a-z0-9-], "
            "starting with a letter or digit"
        )
    if device_id in acl_users(files.acl):
        # A device with a service's name would get that service's ACL (e.g. read every event).
        raise ProvisionError(
            f"保留名称 {device_id!r} is a service user in {files.acl}; choose another device id"
        )


def provision_device(
    files: BrokerFiles,
    device_id: str,
    *,
    host: str,
    port: int = DEVICE_PORT,
    kiosk_dir: Path = DEFAULT_KIOSK_DIR,
) -> Credentials:
    """Give a kiosk a fresh password and client certificate (replacing any earlier ones)."""
    _check_device_id(files, device_id)
    password = new_password()
    with _locked(files):
        issued = issue_device_cert(files.ca, device_id)
        set_password(files, device_id, password)
        # The cloud keeps the certificate (for audit), never the device's key.
        record = files.broker_dir / "devices" / f"{device_id}.crt"
        record.parent.mkdir(exist_ok=True)
        record.write_bytes(issued.cert_pem)
    return Credentials(
        username=device_id,
        password=password,
        mqtt_toml=mqtt_toml(
            username=device_id,
            password=password,
            host=host,
            port=port,
            tls=True,
            kiosk_dir=kiosk_dir,
        ),
        ca_pem=files.ca.ca_cert.read_bytes(),
        cert_pem=issued.cert_pem,
        key_pem=issued.key_pem,
    )


def provision_service(
    files: BrokerFiles, username: str, *, host: str = "127.0.0.1", port: int = SERVICE_PORT
) -> Credentials:
    """Give a cloud service (ingest-N, downlink, monitor) a fresh password for the loopback port."""
    users = acl_users(files.acl)
    if username not in users:
        raise ProvisionError(
            f"未知服务 {username!r} has no `user` block in {files.acl} "
            f"(known: {', '.join(sorted(users))}); add one there first"
        )
    password = new_password()
    with _locked(files):
        set_password(files, username, password)
    toml = mqtt_toml(
        username=username, password=password, host=host, port=port, tls=False, kiosk_dir=Path()
    )
    return Credentials(username=username, password=password, mqtt_toml=toml)


def revoke(files: BrokerFiles, username: str) -> bool:
    """Remove a user's password; effective for new connections after the broker reloads."""
    with _locked(files):
        removed = remove_password(files, username)
        record = files.broker_dir / "devices" / f"{username}.crt"
        if record.exists():
            record.rename(record.with_suffix(".crt.revoked"))
    return removed


def write_bundle(creds: Credentials, out: Path) -> None:
    """The folder a technician copies to the kiosk's kiosk_dir, plus the TOML section."""
    out.mkdir(parents=True, exist_ok=True)
    write_private(out / "kiosk-mqtt.toml", creds.mqtt_toml.encode())
    if creds.ca_pem is not None:
        (out / "ca.crt").write_bytes(creds.ca_pem)
    if creds.cert_pem is not None:
        (out / "device.crt").write_bytes(creds.cert_pem)
    if creds.key_pem is not None:
        write_private(out / "device.key", creds.key_pem)


def provision_command(
    name: Annotated[
        str | None,
        typer.Argument(help="设备编号 device id (= MQTT username), or a service with --service."),
    ] = None,
    ca_init: Annotated[
        bool, typer.Option("--ca-init", help="Create the device CA (once), (re)issue broker cert.")
    ] = False,
    server_name: Annotated[
        list[str] | None,
        typer.Option("--server-name", help="Broker DNS name or IP for its cert; repeatable."),
    ] = None,
    revoke_: Annotated[
        bool, typer.Option("--revoke", help="Remove the user's credentials.")
    ] = False,
    service: Annotated[
        bool, typer.Option("--service", help="A cloud service user named in the ACL (no cert).")
    ] = False,
    broker_dir: Annotated[
        Path, typer.Option(help="Password file, CA, certs.")
    ] = DEFAULT_BROKER_DIR,
    acl: Annotated[
        Path | None, typer.Option(help="Installed ACL (default: BROKER_DIR/acl).")
    ] = None,
    host: Annotated[str | None, typer.Option(help="Broker address the client uses.")] = None,
    port: Annotated[int | None, typer.Option(help="Default: 8883 devices, 1883 services.")] = None,
    out: Annotated[
        Path | None, typer.Option(help="Bundle folder (default: ./provision-NAME).")
    ] = None,
    kiosk_dir: Annotated[
        Path, typer.Option(help="Bundle's place on the kiosk.")
    ] = DEFAULT_KIOSK_DIR,
) -> None:
    """开通设备 Provision a kiosk (password + client cert) or a service; revoke; make the CA."""
    files = BrokerFiles.at(broker_dir, acl)
    try:
        if ca_init:
            made = init_ca(files.ca)
            issued = issue_server_cert(files.ca, server_name or ["localhost", "127.0.0.1"])
            _share_with_broker(files.ca.server_key)
            state = "已创建 Created" if made else "已存在 Kept existing"
            typer.echo(f"{state} device CA {files.ca.ca_cert}")
            serial = f"{issued.serial:x}"
            typer.echo(f"已签发 Issued broker certificate {files.ca.server_cert} (serial {serial})")
            typer.echo(
                f"保管好 Keep {files.ca.ca_key} offline-safe: it can mint device certificates."
            )
            typer.echo(RELOAD_HINT)
            if name is None:
                return
        if name is None:
            raise ProvisionError("请给出设备编号 give a device id (or --ca-init)")
        if revoke_:
            if revoke(files, name):
                typer.echo(f"已吊销 Revoked {name}: its password is gone from {files.passwd}.")
            else:
                typer.echo(f"无此用户 {name} had no credentials in {files.passwd}; nothing to do.")
            typer.echo(RELOAD_HINT)
            return
        if service:
            creds = provision_service(
                files, name, host=host or "127.0.0.1", port=port or SERVICE_PORT
            )
        else:
            if not host:
                raise ProvisionError("请给出 --host: the broker address kiosks connect to")
            creds = provision_device(
                files, name, host=host, port=port or DEVICE_PORT, kiosk_dir=kiosk_dir
            )
        bundle = out or Path(f"provision-{name}")
        write_bundle(creds, bundle)
    except WarmcardError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None
    where = "its service's config" if service else f"{kiosk_dir}/ on the kiosk"
    typer.echo(f"已开通 Provisioned {name}. Bundle: {bundle}/ (copy to {where})")
    typer.echo("密码只显示这一次 The password is shown only here and in the bundle:\n")
    typer.echo(creds.mqtt_toml)
    typer.echo(RELOAD_HINT)


def register(app: typer.Typer) -> None:
    """Add `warmcard provision` to the app."""
    app.command("provision")(provision_command)
