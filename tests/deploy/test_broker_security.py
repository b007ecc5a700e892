"""The production broker config (deploy/mosquitto) on a real Mosquitto: auth, ACL, sessions, TLS.

Every test runs against deploy/mosquitto/mosquitto.conf and its ACL as shipped, with only ports
and paths rewritten (warmcard.command.servers.Mosquitto(secure_dir=...)).
"""

from __future__ import annotations

import time
import tomllib
import uuid
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from typer.testing import CliRunner

from cloud_ingest.pipeline.stored import STORED_FILTER, stored_topic
from tests.support.broker import Secure, connect
from tests.support.mqtt_client import NOT_AUTHORISED, Client, accepted, code
from warmcard.command.cli import app
from warmcard.command.provision import (
    ProvisionError,
    provision_device,
    provision_service,
    revoke,
    share_group,
)
from warmcard.contract import command_topic, config_topic, events_topic, roster_topic, status_topic
from warmcard.settings import MqttSettings

# ---------------------------------------------------------------------------- authentication


def test_anonymous_connect_refused(secure: Secure, clients: list[Client]) -> None:
    c = connect(clients, secure, None)
    assert code(c.connack) == NOT_AUTHORISED
    assert not c.connected


def test_wrong_password_refused(secure: Secure, clients: list[Client]) -> None:
    wrong = connect(clients, secure, "ingest-1", "not-the-password", client_id="ingest-1")
    assert code(wrong.connack) == NOT_AUTHORISED
    right = connect(clients, secure, "ingest-1", client_id="ingest-1")
    assert code(right.connack) == 0


def test_devices_are_refused_on_the_service_listener(
    secure: Secure, dev: tuple[str, str], clients: list[Client]
) -> None:
    """Issue #9.2: a device's name, with or without any password, does not log in on loopback."""
    a, _ = dev
    for password in (None, "", "guess"):
        c = Client(a, password)
        clients.append(c)
        assert code(c.connect(secure.broker.port)) == NOT_AUTHORISED, password


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
    """cloud_ingest.pipeline.stored: the workers write the channel, the console link reads it,
    and a device can neither forge stored taps nor read them (SUBACK 0x87)."""
    a, _ = dev
    mine = stored_topic("ingest-1")
    down = connect(clients, secure, "downlink")
    assert accepted(down.subscribe(STORED_FILTER))
    ingest = connect(clients, secure, "ingest-1", client_id="ingest-1")
    assert accepted(ingest.publish(mine, b"stored"))
    assert down.received(mine) == [b"stored"]
    assert code(down.publish(mine, b"forged")) == NOT_AUTHORISED  # the console only reads
    kiosk = connect(clients, secure, a)
    assert code(kiosk.publish(mine, b"forged")) == NOT_AUTHORISED
    assert code(kiosk.subscribe(STORED_FILTER)) == NOT_AUTHORISED
    assert accepted(ingest.publish(mine, b"again"))
    assert kiosk.received(mine, count=1, timeout=1.0) == []
    assert down.received(mine, count=2) == [b"stored", b"again"]


def test_resend_commands_reach_only_their_device(
    secure: Secure, dev: tuple[str, str], clients: list[Client]
) -> None:
    """downlink and operator may write a device's command topic; only that device reads it."""
    a, b = dev
    if "operator" not in secure.passwords:
        secure.service("operator")
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
    """Each subscription outside the device's own topics is refused (SUBACK 0x87)."""
    a, b = dev
    down = connect(clients, secure, "downlink")
    down.publish(config_topic(b), b"cfg-b", retain=True)
    down.publish(roster_topic(b), b"names-of-b", retain=True)
    spy = connect(clients, secure, a)
    for topic in (config_topic(b), roster_topic(b), "warmcard/v1/devices/+/events", "#", "$SYS/#"):
        assert code(spy.subscribe(topic)) == NOT_AUTHORISED, topic
    owner = connect(clients, secure, b)
    assert code(owner.subscribe(config_topic(b))) == 1
    assert code(owner.subscribe(roster_topic(b))) == 1
    owner.publish(events_topic(b), b"tap-b")
    # The owner gets its retained config and roster: the messages exist and are deliverable.
    assert owner.received(config_topic(b)) == [b"cfg-b"]
    assert owner.received(roster_topic(b)) == [b"names-of-b"]
    time.sleep(0.3)
    assert [m.topic for m in spy.messages] == []


SHARED_EVENTS = "warmcard/v1/devices/+/events"


def test_a_device_cannot_join_ingests_shared_subscription(
    secure: Secure, dev: tuple[str, str], clients: list[Client]
) -> None:
    """Issue #9.1: device B, persistent session, subscribes to ingest's share group and leaves;
    device C publishes 100. Under acl_file B's SUBACK was granted and ingest got 50 of 100; now
    every $share subscription of a device is refused (0x87, whatever the group), ingest gets all."""
    _, b = dev
    group = share_group(secure.files)
    assert len(group) >= 24 and group != "ingest"  # not guessable
    c = f"k-{uuid.uuid4().hex[:6]}-c"
    secure.device(c)
    ingest = connect(clients, secure, "ingest-1", client_id="ingest-1", clean_start=False)
    assert code(ingest.subscribe(f"$share/{group}/{SHARED_EVENTS}")) == 1
    thief = connect(clients, secure, b, clean_start=False)
    for topic in (f"$share/ingest/{SHARED_EVENTS}", f"$share/{group}/{SHARED_EVENTS}", "$share/#"):
        assert code(thief.subscribe(topic)) == NOT_AUTHORISED, topic
    thief.close()
    kiosk = connect(clients, secure, c)
    for n in range(100):
        assert accepted(kiosk.publish(events_topic(c), str(n).encode()))
    got = ingest.received(events_topic(c), 100)
    assert sorted(int(x) for x in got) == list(range(100))


def test_revoking_a_device_disconnects_it_and_ends_its_session(
    secure: Secure, dev: tuple[str, str], clients: list[Client]
) -> None:
    """Revocation is immediate (no reload): the live client is dropped, its session is gone,
    and its still-valid certificate gets nothing: every publish and subscribe is refused."""
    a, _ = dev
    live = connect(clients, secure, a, clean_start=False)
    assert code(live.subscribe(config_topic(a))) == 1
    assert accepted(live.publish(events_topic(a), b"before"))
    assert revoke(secure.files, a, secure.address)
    assert live._wait(lambda: live.disconnected is not None)
    again = connect(clients, secure, a, clean_start=False)
    assert again.connected
    assert again.session_present is False  # the session (and its subscription) ended
    assert code(again.publish(events_topic(a), b"after")) == NOT_AUTHORISED
    assert code(again.subscribe(config_topic(a))) == NOT_AUTHORISED
    assert not revoke(secure.files, a, secure.address)  # nothing left to revoke


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
    common = [
        "--broker-dir",
        str(secure.files.broker_dir),
        "--roles",
        str(secure.files.roles_path),
        "--dynsec-file",
        str(secure.files.dynsec_file),
        "--broker-port",
        str(secure.broker.port),
        "--device-port",
        str(secure.broker.tls_port),
    ]
    result = runner.invoke(
        app,
        ["provision", device, "--host", "127.0.0.1", "--out", str(tmp_path / "b1"), *common],
    )
    assert result.exit_code == 0, result.output
    settings = MqttSettings(
        **tomllib.loads((tmp_path / "b1" / "kiosk-mqtt.toml").read_text())["mqtt"]
    )
    assert (
        (settings.username or "").startswith(device + ".")
        and settings.tls
        and settings.port == 8883
    )
    assert settings.password is None  # the certificate is the credential
    assert (tmp_path / "b1" / "device.key").stat().st_mode & 0o077 == 0
    secure.bundles.joinpath(device).symlink_to(tmp_path / "b1")
    live = connect(clients, secure, device)
    assert live.connected
    assert accepted(live.publish(events_topic(device), b"tap"))

    result = runner.invoke(app, ["provision", device, "--revoke", *common])
    assert result.exit_code == 0, result.output
    assert "已吊销 Revoked" in result.output
    assert live._wait(lambda: live.disconnected is not None)
    after = connect(clients, secure, device)
    assert code(after.publish(events_topic(device), b"x")) == NOT_AUTHORISED

    result = runner.invoke(
        app,
        ["provision", device, "--host", "127.0.0.1", "--out", str(tmp_path / "b2"), *common],
    )
    assert result.exit_code == 0, result.output
    secure.bundles.joinpath(device).unlink()
    secure.bundles.joinpath(device).symlink_to(tmp_path / "b2")
    new = connect(clients, secure, device)
    assert accepted(new.publish(events_topic(device), b"tap"))

    # Provisioned again without a revocation (a replaced SD card, a kiosk that went missing):
    # the new certificate works and the one before gets nothing, its connection dropped.
    result = runner.invoke(
        app,
        ["provision", device, "--host", "127.0.0.1", "--out", str(tmp_path / "b3"), *common],
    )
    assert result.exit_code == 0, result.output
    assert new._wait(lambda: new.disconnected is not None)
    secure.bundles.joinpath(device).unlink()
    secure.bundles.joinpath(device).symlink_to(tmp_path / "b2")
    stale = connect(clients, secure, device)
    assert code(stale.publish(events_topic(device), b"stolen")) == NOT_AUTHORISED
    assert code(stale.subscribe(config_topic(device))) == NOT_AUTHORISED
    secure.bundles.joinpath(device).unlink()
    secure.bundles.joinpath(device).symlink_to(tmp_path / "b3")
    third = connect(clients, secure, device)
    assert accepted(third.publish(events_topic(device), b"tap"))

    # A service: a password on the loopback listener, the share group printed for ingest.
    result = runner.invoke(
        app, ["provision", "ingest-3", "--service", "--out", str(tmp_path / "s"), *common]
    )
    assert result.exit_code == 0, result.output
    assert f'share_group = "{share_group(secure.files)}"' in result.output
    password = tomllib.loads((tmp_path / "s" / "kiosk-mqtt.toml").read_text())["mqtt"]["password"]
    svc = connect(clients, secure, "ingest-3", password, client_id="ingest-3")
    assert svc.connected


def test_provision_refuses_service_names_and_invalid_ids(secure: Secure) -> None:
    for bad in ("ingest-1", "downlink", "Bad_Id", "x"):
        with pytest.raises(ProvisionError):
            provision_device(secure.files, bad, host="127.0.0.1")
    with pytest.raises(ProvisionError):
        provision_service(secure.files, "k-not-a-service")
