"""Devices on the production broker config (deploy/mosquitto): impostors refused, revocation."""

from __future__ import annotations

import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from pydantic import SecretStr

from kiosk.policy import Outcome
from tests.faults.pipeline import Pipeline, wait_until
from warmcard.command.pki import init_ca, issue_server_cert
from warmcard.command.provision import (
    BrokerAddress,
    BrokerFiles,
    init_broker,
    provision_device,
    provision_service,
    revoke,
    write_bundle,
)
from warmcard.command.servers import SECURE_CONF_DIR, InfluxD
from warmcard.contract import Kind, TapEvent, events_topic
from warmcard.settings import MqttSettings
from warmcard.timestamps import format_ts, new_event_id, now_us

NOT_AUTHORISED = 0x87


@pytest.fixture
def secure(tmp_path: Path) -> Iterator[Pipeline]:
    """The production broker (deploy/mosquitto) and the production InfluxDB (deploy/influxdb:
    authentication on), as a server runs them, with only ports and paths rewritten."""
    influxd = InfluxD(tmp_path / "influxd", secure=True)
    influxd.start()
    # Nobody reads or writes taps without the credentials ingest.toml names.
    assert httpx.get(f"{influxd.url}/query", params={"q": "SHOW DATABASES"}).status_code == 401
    files = BrokerFiles.at(tmp_path / "etc", SECURE_CONF_DIR / "dynsec-roles.json")
    init_ca(files.ca)
    issue_server_cert(files.ca, ["localhost", "127.0.0.1"])
    init_broker(files)
    p = Pipeline(tmp_path, influxd, "warmcard", secure_dir=files.broker_dir)
    p.files = files  # type: ignore[attr-defined]
    p.address = BrokerAddress("127.0.0.1", p.broker.port, p.broker.tls_port)  # type: ignore[attr-defined]
    # Kiosks reach the device listener (TLS) through their own proxy.
    p.device_proxy = p.new_proxy(p.broker.tls_port)  # type: ignore[attr-defined]
    ingest = provision_service(files, "ingest-1", broker=p.address).password  # type: ignore[attr-defined]
    p.service_mqtt = MqttSettings(username="ingest-1", password=SecretStr(ingest or ""))
    downlink = provision_service(files, "downlink", broker=p.address).password  # type: ignore[attr-defined]
    p.link_mqtt = MqttSettings(username="downlink", password=SecretStr(downlink or ""))
    try:
        yield p
    finally:
        p.close()
        influxd.stop()


def device_mqtt(p: Pipeline, key: str) -> MqttSettings:
    """Provision a device and return how its kiosk connects (TLS listener, via the proxy)."""
    files, address = p.files, p.address  # type: ignore[attr-defined]
    creds = provision_device(files, p.ids[key], host="127.0.0.1", broker=address)
    bundle = p.tmp / "bundles" / f"{p.ids[key]}-{uuid.uuid4().hex[:4]}"
    write_bundle(creds, bundle)
    return MqttSettings(
        port=p.device_proxy.port,  # type: ignore[attr-defined]
        username=creds.username,
        tls=True,
        ca_file=bundle / "ca.crt",
        cert_file=bundle / "device.crt",
        key_file=bundle / "device.key",
    )


def publish_as(p: Pipeline, settings: MqttSettings, topic: str, payload: bytes) -> ReasonCode:
    """Connect with a device's certificate, publish once at QoS 1, return the PUBACK code."""
    acks: dict[int, ReasonCode] = {}
    done = threading.Event()
    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    client.tls_set(
        ca_certs=str(settings.ca_file),
        certfile=str(settings.cert_file),
        keyfile=str(settings.key_file),
    )

    def on_publish(_c: object, _u: object, mid: int, rc: ReasonCode, _p: object) -> None:
        acks[mid] = rc
        done.set()

    client.on_publish = on_publish
    client.connect("127.0.0.1", p.broker.tls_port)
    client.loop_start()
    try:
        info = client.publish(topic, payload, qos=1)
        assert done.wait(10)
        return acks[info.mid]
    finally:
        client.disconnect()
        client.loop_stop()


def forged(device_id: str, seq: int) -> bytes:
    ts = now_us()
    return TapEvent(
        event_id=new_event_id(ts),
        device_id=device_id,
        seq=seq,
        ts=format_ts(ts),
        card_uid="04FA0001",
        kind=Kind.CHECK_IN,
        person_id="P0001",
    ).to_bytes()


def test_device_posing_as_another_is_refused_and_logged(secure: Pipeline) -> None:
    """14. gate-b (valid credentials) publishes on gate-a's topic: PUBACK 0x87 and the broker
    logs the denial. On its own topic with gate-a's id in the payload: dead-lettered as
    device_mismatch. gate-a's real taps are counted once, the forgeries never."""
    p = secure
    # The whole ingest service: consumer as ingest-1, status and downlink link as downlink.
    service = p.start_ingest()
    wait_until(service.devicelink.connected.is_set)
    consumer = service.consumer
    gate = p.kiosk("gate_a", mqtt=device_mqtt(p, "gate_a"))
    rogue = device_mqtt(p, "gate_b")
    gate.tap(10)
    gate.wait_sent()
    victim = p.ids["gate_a"]
    rc = publish_as(p, rogue, events_topic(victim), forged(victim, 11))
    assert rc.value == NOT_AUTHORISED
    # (Mosquitto 2.0 logs a denied PUBLISH only at log_type debug, which production does not
    # enable; the refusal is visible to the publisher as 0x87, and a kiosk keeps and reports it.)
    rc = publish_as(p, rogue, events_topic(p.ids["gate_b"]), forged(victim, 12))
    assert rc.value < 0x80  # the broker cannot read payloads; ingest must
    wait_until(lambda: consumer.metrics.dead_letters["device_mismatch"] == 1)
    conn = sqlite3.connect(p.tmp / "ingest-1-deadletter.sqlite3")
    try:
        rows = conn.execute("SELECT topic, reason, detail FROM dead_letters").fetchall()
    finally:
        conn.close()
    assert rows == [
        (
            events_topic(p.ids["gate_b"]),
            "device_mismatch",
            f"payload says {victim}, topic says {p.ids['gate_b']}",
        )
    ]
    gate.tap(5)
    assert p.check() == 15  # gate-a's 15, and no point at all from the forgeries
    assert {int(r["seq"]) for r in p.stored(victim)} == set(range(1, 16))


def test_revoked_device_keeps_taps_until_reprovisioned(secure: Pipeline) -> None:
    """15. A kiosk is revoked mid-day: it is dropped and refused (0x87), keeps answering and
    recording taps, and delivers them all once the technician installs new credentials."""
    p = secure
    p.start_ingest()
    data_dir = p.tmp / "kiosks" / "gate"
    gate = p.kiosk("gate_a", data_dir=data_dir, mqtt=device_mqtt(p, "gate_a"))
    gate.tap(20)
    gate.wait_sent()
    assert revoke(p.files, gate.device_id, p.address)  # type: ignore[attr-defined]
    # Dropped at once; its certificate still opens a connection, where everything is refused.
    gate.tap(30)
    time.sleep(1.5)
    assert gate.gateway.outbox.depth() == 30
    assert gate.outcomes()[Outcome.FAULT] == 0
    # The technician re-provisions and installs the new kiosk-mqtt.toml; the kiosk restarts.
    new = device_mqtt(p, "gate_a")
    gate.stop()
    p.kiosks.remove(gate)
    again = p.kiosk("gate_a", data_dir=data_dir, mqtt=new)
    again.wait_sent()
    again.tap(5, start=50)
    again.wait_sent()
    assert p.check() == 55


def test_a_device_in_ingests_share_group_swallows_nothing(secure: Pipeline) -> None:
    """Issue #9.1 on the real ingest: device B (persistent session) subscribes to ingest's
    shared subscription (even knowing the group) and leaves; gate A's 100 taps then all reach
    InfluxDB. Under the old acl_file B's SUBACK was 0x01 and InfluxDB got 50 of 100, with no
    dead letter."""
    p = secure
    p.start_ingest()
    rogue = device_mqtt(p, "gate_b")
    granted: list[ReasonCode] = []
    done = threading.Event()
    thief = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    thief.tls_set(
        ca_certs=str(rogue.ca_file), certfile=str(rogue.cert_file), keyfile=str(rogue.key_file)
    )

    def on_subscribe(_c: object, _u: object, _m: int, rcs: list[ReasonCode], _p: object) -> None:
        granted.extend(rcs)
        done.set()

    thief.on_subscribe = on_subscribe
    props = Properties(PacketTypes.CONNECT)
    props.SessionExpiryInterval = 3600
    thief.connect("127.0.0.1", p.broker.tls_port, clean_start=False, properties=props)
    thief.loop_start()
    thief.subscribe(f"$share/{p.share_group}/warmcard/v1/devices/+/events", qos=1)
    assert done.wait(10)
    thief.disconnect()
    thief.loop_stop()
    assert [rc.value for rc in granted] == [NOT_AUTHORISED]
    gate = p.kiosk("gate_a", mqtt=device_mqtt(p, "gate_a"))
    gate.tap(100)
    gate.wait_sent()
    assert p.check() == 100
