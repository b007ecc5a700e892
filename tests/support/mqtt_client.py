"""A paho MQTT client on its own loop thread with blocking helpers, for broker tests."""

from __future__ import annotations

import gc
import ssl
import threading
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

NOT_AUTHORISED = 0x87
WAIT_S = 3.0


@dataclass
class Client:
    """A paho MQTT client run on its own loop thread, with blocking helpers for tests."""

    def __init__(
        self,
        username: str | None,
        password: str | None,
        *,
        client_id: str = "",
        protocol: MQTTProtocolVersion = mqtt.MQTTv5,
    ) -> None:
        self.protocol = protocol
        self.paho = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=protocol)
        if username is not None:
            self.paho.username_pw_set(username, password)
        self.connack: ReasonCode | None = None
        self.session_present: bool | None = None
        self.disconnected: ReasonCode | None = None
        self.acks: dict[int, ReasonCode] = {}
        self.subacks: dict[int, list[ReasonCode]] = {}
        self.messages: list[mqtt.MQTTMessage] = []
        self._cond = threading.Condition()
        self.paho.on_connect = self._on_connect
        self.paho.on_disconnect = self._on_disconnect
        self.paho.on_publish = self._on_publish
        self.paho.on_subscribe = self._on_subscribe
        self.paho.on_message = self._on_message

    def _note(self) -> None:
        with self._cond:
            self._cond.notify_all()

    def _on_connect(
        self, client: Any, userdata: Any, flags: Any, rc: ReasonCode, props: Any
    ) -> None:
        self.connack = rc
        self.session_present = bool(flags.session_present)
        self._note()

    def _on_disconnect(
        self, client: Any, userdata: Any, flags: Any, rc: ReasonCode, props: Any
    ) -> None:
        self.disconnected = rc
        self._note()

    def _on_publish(self, client: Any, userdata: Any, mid: int, rc: ReasonCode, props: Any) -> None:
        self.acks[mid] = rc
        self._note()

    def _on_subscribe(
        self, client: Any, userdata: Any, mid: int, rcs: list[ReasonCode], props: Any
    ) -> None:
        self.subacks[mid] = rcs
        self._note()

    def _on_message(self, client: Any, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        self.messages.append(msg)
        self._note()

    def _wait(self, done: Callable[[], object], timeout: float = WAIT_S) -> bool:
        with self._cond:
            return bool(self._cond.wait_for(done, timeout))

    def tls(self, ca: Path, cert: Path | None = None, key: Path | None = None) -> Client:
        self.paho.tls_set(
            ca_certs=str(ca),
            certfile=str(cert) if cert else None,
            keyfile=str(key) if key else None,
        )
        return self

    def connect(self, port: int, *, clean_start: bool = True) -> ReasonCode | None:
        """Connect and return the CONNACK reason code (None: no CONNACK, e.g. TLS refused)."""
        self.paho.reconnect_delay_set(60, 120)  # a refused client must not retry in the test
        props = None
        if self.protocol == mqtt.MQTTv5 and not clean_start:
            props = Properties(PacketTypes.CONNECT)
            props.SessionExpiryInterval = 3600
        v5 = self.protocol == mqtt.MQTTv5
        start: bool | Literal[3] = clean_start if v5 else mqtt.MQTT_CLEAN_START_FIRST_ONLY
        refused = False
        # paho does not close the TLS socket whose handshake failed: it is freed as the except
        # block ends, and its ResourceWarning is expected there.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ResourceWarning)
            try:
                self.paho.connect(
                    "127.0.0.1", port, keepalive=30, clean_start=start, properties=props
                )
            except (OSError, ssl.SSLError):
                refused = True
            if refused:
                gc.collect()
        if refused:
            return None
        self.paho.loop_start()
        self._wait(lambda: self.connack is not None or self.disconnected is not None)
        return self.connack

    @property
    def connected(self) -> bool:
        return (
            self.connack is not None and not self.connack.is_failure and self.disconnected is None
        )

    def publish(self, topic: str, payload: bytes = b"{}", *, retain: bool = False) -> ReasonCode:
        """QoS 1 publish; returns the PUBACK reason code."""
        info = self.paho.publish(topic, payload, qos=1, retain=retain)
        assert self._wait(lambda: info.mid in self.acks), f"no PUBACK for {topic}"
        return self.acks[info.mid]

    def subscribe(self, topic: str, qos: int = 1) -> ReasonCode:
        rc, mid = self.paho.subscribe(topic, qos)
        assert rc == mqtt.MQTT_ERR_SUCCESS and mid is not None
        assert self._wait(lambda: mid in self.subacks), f"no SUBACK for {topic}"
        return self.subacks[mid][0]

    def received(self, topic: str, count: int = 1, timeout: float = WAIT_S) -> list[bytes]:
        """Payloads received on `topic`, after waiting for at least `count` (or the timeout)."""

        def on_topic() -> list[bytes]:
            return [bytes(m.payload) for m in self.messages if m.topic == topic]

        self._wait(lambda: len(on_topic()) >= count, timeout)
        return on_topic()

    def close(self) -> None:
        self.paho.disconnect()
        self.paho.loop_stop()


def code(rc: ReasonCode | None) -> int | None:
    return None if rc is None else rc.value


def accepted(rc: ReasonCode | None) -> bool:
    """A PUBACK reason code below 0x80 (MQTT 5: success or "no matching subscribers")."""
    return rc is not None and rc.value < 0x80
