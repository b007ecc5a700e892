"""Fixtures of the deploy tests: the production broker config on a real Mosquitto."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from tests.support.broker import Secure
from tests.support.mqtt_client import Client
from warmcard.command.pki import init_ca, issue_server_cert
from warmcard.command.provision import (
    BrokerAddress,
    BrokerFiles,
    init_broker,
)
from warmcard.command.servers import SECURE_CONF_DIR, Mosquitto


@pytest.fixture(scope="module")
def secure(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Secure]:
    root = tmp_path_factory.mktemp("secure-broker")
    files = BrokerFiles.at(root / "etc", SECURE_CONF_DIR / "dynsec-roles.json")
    init_ca(files.ca)
    issue_server_cert(files.ca, ["localhost", "127.0.0.1"])
    init_broker(files)
    with Mosquitto(root / "run", secure_dir=files.broker_dir) as broker:
        address = BrokerAddress("127.0.0.1", broker.port, broker.tls_port)
        made = Secure(broker, files, address, {}, root / "bundles")
        for name in ("ingest-1", "ingest-2", "downlink"):
            made.service(name)
        yield made


@pytest.fixture
def dev(secure: Secure) -> Iterator[tuple[str, str]]:
    """Two freshly provisioned devices, unique to the test."""
    tag = uuid.uuid4().hex[:6]
    a, b = f"k-{tag}-a", f"k-{tag}-b"
    secure.device(a)
    secure.device(b)
    yield a, b


@pytest.fixture
def clients() -> Iterator[list[Client]]:
    made: list[Client] = []
    yield made
    for c in made:
        c.close()
