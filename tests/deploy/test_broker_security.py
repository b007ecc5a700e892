"""The production broker config (deploy/mosquitto) on a real Mosquitto: auth, ACL, sessions, TLS.

Every test runs against deploy/mosquitto/mosquitto.conf and its ACL as shipped, with only ports
and paths rewritten (warmcard.command.servers.Mosquitto(secure_dir=...)).
"""

from __future__ import annotations

import time
import tomllib
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from typer.testing import CliRunner

from cloud_ingest.pipeline.stored import STORED_FILTER, stored_topic
from tests.support.mqtt_client import NOT_AUTHORISED, Client, accepted, code
from warmcard.command.cli import app
from warmcard.command.pki import CaFiles, init_ca, issue_device_cert, issue_server_cert
from warmcard.command.provision import (
    BrokerFiles,
    ProvisionError,
    provision_device,
    provision_service,
    write_bundle,
)
from warmcard.command.servers import SECURE_CONF_DIR, Mosquitto
from warmcard.contract import (
    command_topic,
    config_topic,
    events_topic,
    roster_topic,
    status_topic,
)
from warmcard.settings import MqttSettings


@dataclass
class Secure:
    broker: Mosquitto
    files: BrokerFiles
    passwords: dict[str, str]
    bundles: Path

    def device(self, device_id: str) -> str:
        """Provision a device (password + certificate), reload, and return its password."""
        creds = provision_device(self.files, device_id, host="127.0.0.1")
        write_bundle(creds, self.bundles / device_id)
        self.broker.reload()
        time.sleep(0.2)  # SIGHUP is asynchronous; Mosquitto re-reads between its loop turns
        self.passwords[device_id] = creds.password
        return creds.password


@pytest.fixture(scope="module")
def secure(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Secure]:
    root = tmp_path_factory.mktemp("secure-broker")
    files = BrokerFiles.at(root / "etc", SECURE_CONF_DIR / "acl")
    init_ca(files.ca)
    issue_server_cert(files.ca, ["localhost", "127.0.0.1"])
    passwords = {
        name: provision_service(files, name).password
        for name in ("ingest-1", "ingest-2", "downlink")
    }
    with Mosquitto(root / "run", secure_dir=files.broker_dir) as broker:
        yield Secure(broker, files, passwords, root / "bundles")


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


def connect(
    clients: list[Client],
    secure: Secure,
    user: str | None,
    password: str | None = None,
    **kwargs: Any,
) -> Client:
    clean_start = kwargs.pop("clean_start", True)
    c = Client(
        user, password if password is not None else secure.passwords.get(user or ""), **kwargs
    )
    clients.append(c)
    c.connect(secure.broker.port, clean_start=clean_start)
    return c


# ---------------------------------------------------------------------------- authentication


def test_anonymous_connect_refused(secure: Secure, clients: list[Client]) -> None:
    c = connect(clients, secure, None)
    assert code(c.connack) == NOT_AUTHORISED
    assert not c.connected


def test_wrong_password_refused(
    secure: Secure, dev: tuple[str, str], clients: list[Client]
) -> None:
    a, _ = dev
    wrong = connect(clients, secure, a, "not-the-password")
    assert code(wrong.connack) == NOT_AUTHORISED
    right = connect(clients, secure, a)
    assert code(right.connack) == 0


# ---------------------------------------------------------------------------- publish ACL


def test_device_publishes_own_events_and_ingest_consumes_them_via_shared_subscription(
    secure: Secure, dev: tuple[str, str], clients: list[Client]
) -> None:
    a, _ = dev
    ingest = connect(clients, secure, "ingest-1", client_id="ingest-1")
    assert code(ingest.subscribe("$share/ingest/warmcard/v1/devices/+/events")) == 1
    kiosk = connect(clients, secure, a)
    assert accepted(kiosk.publish(events_topic(a), b"tap-1"))
    assert accepted(kiosk.publish(status_topic(a), b"hb", retain=True))
    assert ingest.received(events_topic(a)) == [b"tap-1"]


def test_device_cannot_publish_as_another_device_mqtt5(
    secure: Secure, dev: tuple[str, str], clients: list[Client]
) -> None:
    a, b = dev
    ingest = connect(clients, secure, "ingest-2", client_id="ingest-2")
    ingest.subscribe("warmcard/v1/devices/+/events")
    kiosk = connect(clients, secure, a)
    for topic in (events_topic(b), status_topic(b), config_topic(a), roster_topic(a)):
        assert code(kiosk.publish(topic, b"forged")) == NOT_AUTHORISED, topic
    assert ingest.received(events_topic(b), timeout=0.5) == []


def test_mqtt311_acknowledges_a_denied_publish_as_if_it_succeeded(
    secure: Secure, dev: tuple[str, str], clients: list[Client]
) -> None:
    """Why the fleet must speak MQTT 5: 3.1.1 has no reason code, so a denial looks like success."""
    a, b = dev
    ingest = connect(clients, secure, "ingest-2", client_id="ingest-2")
    ingest.subscribe("warmcard/v1/devices/+/events")
    old = connect(clients, secure, a, protocol=mqtt.MQTTv311)
    assert code(old.connack) == 0
    ack = old.publish(events_topic(b), b"forged-311")
    assert code(ack) == 0  # PUBACK received, "success" ...
    assert ingest.received(events_topic(b), timeout=1.0) == []  # ... yet it went nowhere


def test_ingest_cannot_publish_events_or_downlink(
    secure: Secure, dev: tuple[str, str], clients: list[Client]
) -> None:
    a, _ = dev
    ingest = connect(clients, secure, "ingest-1", client_id="ingest-1")
    # Its own name as a device id too: pattern ACLs apply to every user; the ACL denies that.
    for topic in (events_topic(a), events_topic("ingest-1"), config_topic(a), roster_topic(a)):
        assert code(ingest.publish(topic, b"x")) == NOT_AUTHORISED, topic


def test_downlink_publishes_config_and_roster_only(
    secure: Secure, dev: tuple[str, str], clients: list[Client]
) -> None:
    a, _ = dev
    down = connect(clients, secure, "downlink")
    assert accepted(down.publish(config_topic(a), b"cfg", retain=True))
    assert accepted(down.publish(roster_topic(a), b"roster", retain=True))
    assert code(down.publish(events_topic(a), b"x")) == NOT_AUTHORISED
    kiosk = connect(clients, secure, a)
    kiosk.subscribe(config_topic(a))
    assert kiosk.received(config_topic(a)) == [b"cfg"]
    # It also carries ingest's device-health link: it reads heartbeats, never events.
    down.subscribe(status_topic(a))
    down.subscribe(events_topic(a))
    assert accepted(kiosk.publish(status_topic(a), b"hb"))
    assert accepted(kiosk.publish(events_topic(a), b"tap"))
    assert down.received(status_topic(a)) == [b"hb"]
    assert down.received(events_topic(a), count=1, timeout=1.0) == []


def test_stored_taps_go_from_each_worker_to_the_consoles_only(
    secure: Secure, dev: tuple[str, str], clients: list[Client]
) -> None:
    """cloud_ingest.pipeline.stored: a worker writes only its own topic, the console link reads
    every worker's, and a device can neither forge stored taps nor read them."""
    a, _ = dev
    mine, theirs = stored_topic("ingest-1"), stored_topic("ingest-2")
    down = connect(clients, secure, "downlink")
    assert accepted(down.subscribe(STORED_FILTER))
    ingest = connect(clients, secure, "ingest-1", client_id="ingest-1")
    assert accepted(ingest.publish(mine, b"stored"))
    assert code(ingest.publish(theirs, b"forged")) == NOT_AUTHORISED
    assert down.received(mine) == [b"stored"]
    kiosk = connect(clients, secure, a)
    assert code(kiosk.publish(mine, b"forged")) == NOT_AUTHORISED
    kiosk.subscribe(STORED_FILTER)  # granted by the acl_file, but nothing is delivered
    assert accepted(ingest.publish(mine, b"again"))
    assert kiosk.received(mine, count=1, timeout=1.0) == []
    assert down.received(mine, count=2) == [b"stored", b"again"]


def test_resend_commands_reach_only_their_device(
    secure: Secure, dev: tuple[str, str], clients: list[Client]
) -> None:
    """downlink and operator may write a device's command topic; only that device reads it."""
    a, b = dev
    if "operator" not in secure.passwords:
        secure.passwords["operator"] = provision_service(secure.files, "operator").password
        secure.broker.reload()
        time.sleep(0.2)
    owner = connect(clients, secure, a)
    spy = connect(clients, secure, b)
    owner.subscribe(command_topic(a))
    spy.subscribe(command_topic(a))
    down = connect(clients, secure, "downlink")
    operator = connect(clients, secure, "operator")
    assert accepted(down.publish(command_topic(a), b"cmd-from-downlink"))
    assert accepted(operator.publish(command_topic(a), b"cmd-from-operator"))
    assert owner.received(command_topic(a), count=2) == [b"cmd-from-downlink", b"cmd-from-operator"]
    # A device cannot command itself or another; ingest cannot command at all.
    assert code(owner.publish(command_topic(a), b"x")) == NOT_AUTHORISED
    assert code(spy.publish(command_topic(a), b"x")) == NOT_AUTHORISED
    ingest = connect(clients, secure, "ingest-1", client_id="ingest-1")
    assert code(ingest.publish(command_topic(a), b"x")) == NOT_AUTHORISED
    time.sleep(0.3)
    assert spy.received(command_topic(a), timeout=0.2) == []
    # The operator reads heartbeats (for last_seq), writes nothing else.
    owner.publish(status_topic(a), b'{"hb":1}', retain=True)
    operator.subscribe(status_topic(a))
    assert operator.received(status_topic(a)) == [b'{"hb":1}']
    for topic in (events_topic(a), config_topic(a), roster_topic(a)):
        assert code(operator.publish(topic, b"x")) == NOT_AUTHORISED, topic
    operator.subscribe(events_topic(a))
    owner.publish(events_topic(a), b"tap")
    assert operator.received(events_topic(a), timeout=0.5) == []


# ---------------------------------------------------------------------------- subscribe / read ACL


def test_device_reads_nothing_of_another_device(
    secure: Secure, dev: tuple[str, str], clients: list[Client]
) -> None:
    """Mosquitto 2.0's acl_file never refuses a SUBSCRIBE (SUBACK grants it); the read ACL is
    applied to every message delivered, retained ones included, so nothing arrives."""
    a, b = dev
    down = connect(clients, secure, "downlink")
    down.publish(config_topic(b), b"cfg-b", retain=True)
    down.publish(roster_topic(b), b"names-of-b", retain=True)
    spy = connect(clients, secure, a)
    for topic in (config_topic(b), roster_topic(b), "warmcard/v1/devices/+/events", "#"):
        assert code(spy.subscribe(topic)) == 1, topic  # granted: a 2.0.11 limitation
    owner = connect(clients, secure, b)
    owner.subscribe(config_topic(b))
    owner.subscribe(roster_topic(b))
    owner.publish(events_topic(b), b"tap-b")
    # The owner gets its retained config and roster: the messages exist and are deliverable.
    assert owner.received(config_topic(b)) == [b"cfg-b"]
    assert owner.received(roster_topic(b)) == [b"names-of-b"]
    time.sleep(0.3)
    assert [m.topic for m in spy.messages] == []


def test_device_joining_ingest_share_group_swallows_events_known_limitation(
    secure: Secure, dev: tuple[str, str], clients: list[Client]
) -> None:
    """A device may join $share/ingest (SUBSCRIBE is not ACL-checked); the broker then routes
    some events to it, the read ACL drops them, and no other member gets them. A plain
    subscription is immune. docs/broker.md: why ingest uses the plain filter until then."""
    a, b = dev
    shared = connect(clients, secure, "ingest-1", client_id="ingest-1")
    shared.subscribe("$share/ingest/warmcard/v1/devices/+/events")
    plain = connect(clients, secure, "ingest-2", client_id="ingest-2")
    plain.subscribe("warmcard/v1/devices/+/events")
    thief = connect(clients, secure, b)
    assert code(thief.subscribe("$share/ingest/warmcard/v1/devices/+/events")) == 1
    kiosk = connect(clients, secure, a)
    for n in range(20):
        assert accepted(kiosk.publish(events_topic(a), str(n).encode()))
    assert len(plain.received(events_topic(a), 20)) == 20
    got_shared = shared.received(events_topic(a), 20, timeout=1.0)
    assert len(got_shared) < 20
    assert thief.messages == []


# ---------------------------------------------------------------------------- sessions


def test_a_device_using_ingests_client_id_does_not_take_over_its_session(
    secure: Secure, dev: tuple[str, str], clients: list[Client]
) -> None:
    a, _ = dev
    ingest = connect(clients, secure, "ingest-2", client_id="ingest-2", clean_start=False)
    ingest.subscribe("warmcard/v1/devices/+/events")
    impostor = connect(clients, secure, a, client_id="ingest-2")
    assert code(impostor.connack) == 0  # admitted, but as client id "<device_id>"
    assert accepted(impostor.publish(events_topic(a), b"after-impostor"))
    assert ingest.received(events_topic(a)) == [b"after-impostor"]
    assert ingest.connected and ingest.disconnected is None


def test_a_second_connection_with_ingests_own_username_does_take_over(
    secure: Secure, clients: list[Client]
) -> None:
    """The control for the test above, and why each ingest worker needs its own username."""
    first = connect(clients, secure, "ingest-2", client_id="ingest-2")
    assert first.connected
    connect(clients, secure, "ingest-2", client_id="whatever")
    assert first._wait(lambda: first.disconnected is not None)
    assert not first.connected


# ---------------------------------------------------------------------------- provisioning


def test_provision_cli_revoke_and_reprovision(
    secure: Secure, clients: list[Client], tmp_path: Path
) -> None:
    device = f"k-{uuid.uuid4().hex[:6]}-rev"
    runner = CliRunner()
    common = ["--broker-dir", str(secure.files.broker_dir), "--acl", str(secure.files.acl)]
    result = runner.invoke(
        app,
        ["provision", device, "--host", "127.0.0.1", "--out", str(tmp_path / "b1"), *common],
    )
    assert result.exit_code == 0, result.output
    settings = MqttSettings(
        **tomllib.loads((tmp_path / "b1" / "kiosk-mqtt.toml").read_text())["mqtt"]
    )
    assert settings.username == device and settings.tls and settings.port == 8883
    password = settings.password.get_secret_value() if settings.password else ""
    assert password in result.output  # printed once for the technician
    assert (tmp_path / "b1" / "device.key").stat().st_mode & 0o077 == 0
    secure.broker.reload()
    time.sleep(0.2)
    live = connect(clients, secure, device, password)
    assert live.connected

    result = runner.invoke(app, ["provision", device, "--revoke", *common])
    assert result.exit_code == 0, result.output
    assert "systemctl reload mosquitto" in result.output
    secure.broker.reload()
    # The reload also drops the revoked device's live connection.
    assert live._wait(lambda: live.disconnected is not None)
    assert code(connect(clients, secure, device, password).connack) == NOT_AUTHORISED

    result = runner.invoke(
        app,
        ["provision", device, "--host", "127.0.0.1", "--out", str(tmp_path / "b2"), *common],
    )
    assert result.exit_code == 0, result.output
    new = tomllib.loads((tmp_path / "b2" / "kiosk-mqtt.toml").read_text())["mqtt"]["password"]
    assert new != password
    secure.broker.reload()
    time.sleep(0.2)
    assert code(connect(clients, secure, device, new).connack) == 0
    assert code(connect(clients, secure, device, password).connack) == NOT_AUTHORISED


def test_provision_refuses_service_names_and_invalid_ids(secure: Secure) -> None:
    for bad in ("ingest-1", "downlink", "Bad_Id", "x"):
        with pytest.raises(ProvisionError):
            provision_device(secure.files, bad, host="127.0.0.1")
    with pytest.raises(ProvisionError):
        provision_service(secure.files, "k-not-a-service")


# ---------------------------------------------------------------------------- TLS listener


def _tls_client(clients: list[Client], user: str, password: str) -> Client:
    c = Client(user, password)
    clients.append(c)
    return c


def test_tls_device_with_certificate_and_password_connects(
    secure: Secure, dev: tuple[str, str], clients: list[Client]
) -> None:
    a, _ = dev
    bundle = secure.bundles / a
    c = _tls_client(clients, a, secure.passwords[a])
    c.tls(bundle / "ca.crt", bundle / "device.crt", bundle / "device.key")
    assert code(c.connect(secure.broker.tls_port)) == 0
    assert accepted(c.publish(events_topic(a), b"over-tls"))
    assert code(c.publish(events_topic("k-someone-else"), b"x")) == NOT_AUTHORISED


def test_tls_without_client_certificate_refused(
    secure: Secure, dev: tuple[str, str], clients: list[Client]
) -> None:
    a, _ = dev
    c = _tls_client(clients, a, secure.passwords[a]).tls(secure.bundles / a / "ca.crt")
    assert code(c.connect(secure.broker.tls_port)) is None
    assert not c.connected  # the broker ends the handshake: "peer did not return a certificate"


def test_tls_certificate_from_another_ca_refused(
    secure: Secure, dev: tuple[str, str], clients: list[Client], tmp_path: Path
) -> None:
    a, _ = dev
    rogue = CaFiles(tmp_path / "rogue")
    init_ca(rogue)
    issued = issue_device_cert(rogue, a)
    (tmp_path / "d.crt").write_bytes(issued.cert_pem)
    (tmp_path / "d.key").write_bytes(issued.key_pem)
    c = _tls_client(clients, a, secure.passwords[a])
    c.tls(secure.bundles / a / "ca.crt", tmp_path / "d.crt", tmp_path / "d.key")
    assert code(c.connect(secure.broker.tls_port)) is None
    assert not c.connected


def test_tls_device_with_certificate_but_wrong_password_refused(
    secure: Secure, dev: tuple[str, str], clients: list[Client]
) -> None:
    a, b = dev
    bundle = secure.bundles / a
    # a's certificate with b's password: the certificate admits to TLS, the password decides who.
    c = _tls_client(clients, a, secure.passwords[b])
    c.tls(bundle / "ca.crt", bundle / "device.crt", bundle / "device.key")
    assert code(c.connect(secure.broker.tls_port)) == NOT_AUTHORISED


def test_tls_client_refuses_a_broker_it_does_not_trust(
    secure: Secure, dev: tuple[str, str], clients: list[Client], tmp_path: Path
) -> None:
    a, _ = dev
    other = CaFiles(tmp_path / "other")
    init_ca(other)
    bundle = secure.bundles / a
    c = _tls_client(clients, a, secure.passwords[a])
    c.tls(other.ca_cert, bundle / "device.crt", bundle / "device.key")
    assert code(c.connect(secure.broker.tls_port)) is None
