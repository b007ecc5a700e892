"""`warmcard provision`: broker credentials for kiosks and cloud services, and the device CA.

Runs on the broker host, as root, against the broker directory that deploy/mosquitto/mosquitto.conf
points at (/etc/mosquitto/warmcard). docs/broker.md is the administrator's guide.
"""

from __future__ import annotations

import fcntl
import grp
import json
import os
import pwd
import secrets
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from warmcard.command.dynsec import (
    DEVICE_GROUP,
    Control,
    DynsecError,
    Roles,
    device_role_name,
    ensure_device_role,
    initial_config,
)
from warmcard.command.pki import (
    CaFiles,
    issue_device_cert,
    write_private,
)
from warmcard.errors import WarmcardError
from warmcard.ids import DEVICE_ID_RE

DEFAULT_BROKER_DIR = Path("/etc/mosquitto/warmcard")
DEFAULT_DYNSEC_FILE = Path("/var/lib/mosquitto/dynamic-security.json")
DEFAULT_KIOSK_DIR = Path("/etc/warmcard/mqtt")
DEVICE_PORT = 8883
SERVICE_PORT = 1883
BROKER_GROUP = "mosquitto"
BROKER_USER = "mosquitto"
SHARE_GROUP_FILE = "share-group"
RESTART_HINT = (
    "重启 Restart the broker so it loads the plugin's config: systemctl restart mosquitto"
)


class ProvisionError(WarmcardError):
    """Provisioning refused or failed; the message says what to do next."""


@dataclass(frozen=True)
class BrokerFiles:
    """The broker directory (CA, server certificate, admin secret), the roles, the plugin config."""

    broker_dir: Path
    roles_path: Path
    dynsec_file: Path

    @classmethod
    def at(
        cls, broker_dir: Path, roles: Path | None = None, dynsec: Path | None = None
    ) -> BrokerFiles:
        """Tests keep the plugin's config in the broker directory; production in /var/lib."""
        broker_dir = Path(broker_dir)
        return cls(
            broker_dir,
            Path(roles) if roles else broker_dir / "dynsec-roles.json",
            Path(dynsec) if dynsec else broker_dir / "dynamic-security.json",
        )

    @property
    def ca(self) -> CaFiles:
        return CaFiles(self.broker_dir)

    @property
    def admin_secret(self) -> Path:
        return self.broker_dir / "dynsec-admin.secret"

    @property
    def roles(self) -> Roles:
        try:
            return Roles.load(self.roles_path)
        except DynsecError as exc:
            raise ProvisionError(str(exc)) from None


@dataclass(frozen=True)
class BrokerAddress:
    """Where `provision` reaches the running broker: its loopback and device listeners."""

    host: str = "127.0.0.1"
    service_port: int = SERVICE_PORT
    device_port: int = DEVICE_PORT


@dataclass(frozen=True)
class Credentials:
    """What one provisioning run hands out; a password exists nowhere else in clear."""

    username: str
    password: str | None
    mqtt_toml: str
    ca_pem: bytes | None = None
    cert_pem: bytes | None = None
    key_pem: bytes | None = None


def new_password() -> str:
    """192 random bits, URL-safe: no quoting trouble in TOML or shells."""
    return secrets.token_urlsafe(24)


def _chown_broker(path: Path, mode: int) -> None:
    """Mosquitto reads (and the plugin rewrites) these files after dropping root."""
    if os.geteuid() != 0:
        return
    try:
        gid = grp.getgrnam(BROKER_GROUP).gr_gid
        uid = pwd.getpwnam(BROKER_USER).pw_uid if mode == 0o600 else 0
    except KeyError:
        return
    os.chown(path, uid, gid)
    os.chmod(path, mode)


def share_with_broker(path: Path) -> None:
    _chown_broker(path, 0o640)


@contextmanager
def _locked(files: BrokerFiles) -> Iterator[None]:
    """One provisioning run at a time."""
    files.broker_dir.mkdir(parents=True, exist_ok=True)
    with (files.broker_dir / ".provision.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def init_broker(files: BrokerFiles) -> bool:
    """Write the plugin's first config (roles, devices group, admin) unless it exists.

    The plugin reads this file only when the broker starts; afterwards every change goes
    through $CONTROL (`Control`), and the plugin saves the file itself. True when written.
    """
    if files.dynsec_file.exists():
        if not files.admin_secret.exists():
            raise ProvisionError(
                f"缺少管理员密码 {files.admin_secret} is missing but {files.dynsec_file} exists; "
                "restore it from backup, or stop mosquitto, move the plugin file away and run "
                "--ca-init again (every device must then be provisioned again)"
            )
        return False
    password = new_password()
    config = initial_config(files.roles, password)
    write_private(files.admin_secret, password.encode())
    write_private(files.dynsec_file, json.dumps(config, indent=2).encode())
    _chown_broker(files.dynsec_file, 0o600)
    share = files.broker_dir / SHARE_GROUP_FILE
    if not share.exists():
        # Ingest's shared-subscription group: unguessable, so no client can aim at it.
        write_private(share, f"ingest-{secrets.token_hex(12)}".encode())
    return True


def share_group(files: BrokerFiles) -> str:
    """The ingest workers' shared-subscription group written by init_broker."""
    try:
        return (files.broker_dir / SHARE_GROUP_FILE).read_text().strip()
    except OSError:
        raise ProvisionError(
            f"没有共享组 no {files.broker_dir / SHARE_GROUP_FILE}; run "
            "`warmcard provision --ca-init` first"
        ) from None


@contextmanager
def _control(files: BrokerFiles, broker: BrokerAddress) -> Iterator[Control]:
    try:
        password = files.admin_secret.read_text().strip()
    except OSError:
        raise ProvisionError(
            f"读不到 cannot read {files.admin_secret}; run `warmcard provision --ca-init` "
            "first, as root"
        ) from None
    try:
        control = Control(broker.host, broker.service_port, password)
    except DynsecError as exc:
        raise ProvisionError(str(exc)) from None
    try:
        yield control
    except DynsecError as exc:
        raise ProvisionError(str(exc)) from None
    finally:
        control.close()


def mqtt_toml(
    *,
    username: str,
    password: str | None,
    host: str,
    port: int,
    tls: bool,
    kiosk_dir: Path,
) -> str:
    """The [mqtt] section (warmcard.settings.MqttSettings) for the device's or service's TOML."""
    lines = ["[mqtt]", f'host = "{host}"', f"port = {port}", f'username = "{username}"']
    if password is not None:
        lines.append(f'password = "{password}"')
    lines.append(f"tls = {'true' if tls else 'false'}")
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
    if files.roles.reserved(device_id):
        # A device with a service's name would be that service (e.g. read every event).
        raise ProvisionError(
            f"保留名称 {device_id!r} is a service or reserved name in {files.roles_path}; "
            "choose another device id"
        )


def device_username(device_id: str) -> str:
    """A new broker username (and certificate CN) for `device_id`: the id, a dot, and a random
    tag. Each provisioning has its own, so a certificate issued before no longer names a client
    the broker knows: the kiosk it was on (lost, stolen, replaced) can do nothing."""
    return f"{device_id}.{secrets.token_hex(4)}"


def device_of(username: str) -> str:
    """The device id in a device's broker username (`gate-a.1f2e3d4c` or, from releases before
    the tag, `gate-a`)."""
    return username.split(".", 1)[0]


def _device_clients(control: Control, device_id: str) -> list[str]:
    """The broker's clients for `device_id`: every provisioning not yet replaced or revoked."""
    (answer,) = control.run({"command": "listClients", "verbose": False, "count": -1})
    names = (answer.get("data") or {}).get("clients") or []
    return [n for n in names if isinstance(n, str) and device_of(n) == device_id]


def _delete_clients(control: Control, usernames: list[str]) -> list[dict[str, Any]]:
    """Delete these broker clients (their live connections drop); the plugin's answers."""
    if not usernames:
        return []
    return control.run(
        *({"command": "deleteClient", "username": u} for u in usernames),
        tolerate=("Client not found",),
    )


def provision_device(
    files: BrokerFiles,
    device_id: str,
    *,
    host: str,
    port: int = DEVICE_PORT,
    kiosk_dir: Path = DEFAULT_KIOSK_DIR,
    broker: BrokerAddress | None = None,
) -> Credentials:
    """Give a kiosk a client certificate and its own role on the broker.

    The device listener takes the username from the certificate (use_identity_as_username):
    the certificate is the device's credential, and the plugin decides what it may do. The
    certificate's CN is a username of this provisioning (`device_username`); the clients of
    earlier provisionings of the device are deleted and their sessions ended, so an old
    certificate (a stolen kiosk's, a replaced SD card's) gets nothing once a new one is issued.
    """
    _check_device_id(files, device_id)
    broker = broker or BrokerAddress()
    username = device_username(device_id)
    with _locked(files), _control(files, broker) as control:
        issued = issue_device_cert(files.ca, username)
        ensure_device_role(control, device_id)
        earlier = _device_clients(control, device_id)
        # A client without a password: it cannot log in on the loopback listener at all.
        control.run(
            {
                "command": "createClient",
                "username": username,
                "roles": [{"rolename": device_role_name(device_id)}],
                "groups": [{"groupname": DEVICE_GROUP}],
            }
        )
        _delete_clients(control, earlier)
        # The cloud keeps the certificate (for audit and revocation), never the device's key.
        record = files.broker_dir / "devices" / f"{device_id}.crt"
        record.parent.mkdir(exist_ok=True)
        record.write_bytes(issued.cert_pem)
    for old in earlier:
        _wipe_session(files, old, broker)
    return Credentials(
        username=username,
        password=None,
        mqtt_toml=mqtt_toml(
            username=username,
            password=None,
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
    files: BrokerFiles,
    username: str,
    *,
    host: str = "127.0.0.1",
    port: int = SERVICE_PORT,
    broker: BrokerAddress | None = None,
) -> Credentials:
    """Give a cloud service (ingest-N, downlink, operator, monitor) a fresh password."""
    role = files.roles.service_role(username)
    if role is None:
        raise ProvisionError(
            f"未知服务 {username!r} matches no service in {files.roles_path} "
            f"(known: {', '.join(sorted(files.roles.services))}); add it there first"
        )
    password = new_password()
    with _locked(files), _control(files, broker or BrokerAddress()) as control:
        control.run(
            {
                "command": "createClient",
                "username": username,
                "password": password,
                "roles": [{"rolename": role}],
            },
            tolerate=("Client already exists",),
        )
        # Rotating: the same client, a new password, its role as the file says now.
        control.run(
            {"command": "setClientPassword", "username": username, "password": password},
            {"command": "modifyClient", "username": username, "roles": [{"rolename": role}]},
        )
    toml = mqtt_toml(
        username=username, password=password, host=host, port=port, tls=False, kiosk_dir=Path()
    )
    if role == "ingest":
        toml = f'share_group = "{share_group(files)}"\n\n' + toml
    return Credentials(username=username, password=password, mqtt_toml=toml)


def _wipe_session(files: BrokerFiles, username: str, broker: BrokerAddress) -> None:
    """End a device client's persistent session (and any subscription it holds).

    The device listener takes the client id from the certificate, so only a certificate with
    that username as CN reaches its session: a throwaway one is minted here, used once with a
    clean start and a zero session expiry, and deleted.
    """
    issued = issue_device_cert(files.ca, username)
    done = threading.Event()
    with tempfile.TemporaryDirectory() as tmp:
        cert, key = Path(tmp) / "c.crt", Path(tmp) / "c.key"
        cert.write_bytes(issued.cert_pem)
        write_private(key, issued.key_pem)
        client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        client.tls_set(ca_certs=str(files.ca.ca_cert), certfile=str(cert), keyfile=str(key))
        client.tls_insecure_set(True)  # our CA is checked; the name is whatever --server-name was
        client.on_connect = lambda *_a: done.set()
        try:
            client.connect(broker.host, broker.device_port, clean_start=True)
        except OSError as exc:
            raise ProvisionError(
                f"会话未清除 could not end {username}'s session on port {broker.device_port} "
                f"({exc}); it expires by itself (persistent_client_expiration)"
            ) from None
        client.loop_start()
        done.wait(5)
        client.disconnect()
        client.loop_stop()


def revoke(files: BrokerFiles, username: str, broker: BrokerAddress | None = None) -> bool:
    """Take a user off the broker at once: its client and role go, a live connection is
    dropped, and a device's session ends. For a device (its id, or one of its usernames) every
    provisioning of it goes. False when the broker did not know the user."""
    broker = broker or BrokerAddress()
    device = not files.roles.reserved(username)
    name = device_of(username) if device else username
    with _locked(files), _control(files, broker) as control:
        clients = _device_clients(control, name) if device else [username]
        answers = _delete_clients(control, clients)
        if device:
            control.run(
                {"command": "deleteRole", "rolename": device_role_name(name)},
                tolerate=("Role not found",),
            )
        record = files.broker_dir / "devices" / f"{name}.crt"
        if record.exists():
            record.rename(record.with_suffix(".crt.revoked"))
    for client in clients if device else []:
        _wipe_session(files, client, broker)
    return bool(answers) and not any(a.get("error") for a in answers)


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
