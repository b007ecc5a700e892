"""The production broker (deploy/mosquitto) as the broker tests run it, and their clients."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.support.mqtt_client import Client
from warmcard.command.provision import (
    BrokerAddress,
    BrokerFiles,
    provision_device,
    provision_service,
    write_bundle,
)
from warmcard.command.servers import Mosquitto


@dataclass
class Secure:
    broker: Mosquitto
    files: BrokerFiles
    address: BrokerAddress
    passwords: dict[str, str]
    bundles: Path

    def device(self, device_id: str) -> None:
        """Provision a device (certificate + its own role); in effect at once, no reload."""
        creds = provision_device(self.files, device_id, host="127.0.0.1", broker=self.address)
        write_bundle(creds, self.bundles / device_id)

    def service(self, name: str) -> str:
        creds = provision_service(self.files, name, broker=self.address)
        assert creds.password is not None
        self.passwords[name] = creds.password
        return creds.password


def connect(
    clients: list[Client],
    secure: Secure,
    user: str | None,
    password: str | None = None,
    **kwargs: Any,
) -> Client:
    """A service on the loopback listener (password), a device on the TLS one (its bundle)."""
    clean_start = kwargs.pop("clean_start", True)
    bundle = secure.bundles / (user or "-")
    if user is not None and bundle.is_dir():
        c = Client(user, password, **kwargs)
        clients.append(c)
        c.tls(bundle / "ca.crt", bundle / "device.crt", bundle / "device.key")
        c.connect(secure.broker.tls_port, clean_start=clean_start)
        return c
    c = Client(
        user, password if password is not None else secure.passwords.get(user or ""), **kwargs
    )
    clients.append(c)
    c.connect(secure.broker.port, clean_start=clean_start)
    return c
