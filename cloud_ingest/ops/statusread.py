"""A short-lived MQTT connection for tools: read retained heartbeats, publish commands.

Uses its own credentials (`[mqtt]` of the operator, see docs/guarantees.md), never an ingest
worker's: with `use_username_as_clientid`, a second connection under a worker's username would
take over that worker's persistent session and wipe its queue.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterable
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from cloud_ingest.pipeline.mqtt_client import configure_client
from warmcard.contract import DeviceStatus, device_from_topic, parse_model, status_topic
from warmcard.rejections import InvalidPayload
from warmcard.settings import MqttSettings


class ToolLink:
    """Connect on enter, disconnect on exit; `publish` waits for the PUBACK."""

    def __init__(self, settings: MqttSettings, timeout_s: float = 5.0) -> None:
        self.settings = settings
        self.timeout_s = timeout_s
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"warmcard-tool-{uuid.uuid4().hex[:8]}",
            protocol=mqtt.MQTTv5,
        )
        configure_client(self.client, settings)
        self._statuses: dict[str, DeviceStatus] = {}
        self._heard: set[str] = set()
        self._lock = threading.Lock()
        self._connected = threading.Event()
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message

    def _on_connect(self, c: Any, u: Any, flags: Any, reason: Any, props: Any) -> None:
        if not reason.is_failure:
            self._connected.set()

    def _on_message(self, c: Any, u: Any, message: mqtt.MQTTMessage) -> None:
        try:
            device_id = device_from_topic(message.topic)
            status = parse_model(DeviceStatus, bytes(message.payload)) if message.payload else None
        except InvalidPayload:
            return
        with self._lock:
            self._heard.add(device_id)
            if status is not None and status.device_id == device_id:
                self._statuses[device_id] = status

    def __enter__(self) -> ToolLink:
        self.client.connect(self.settings.host, self.settings.port, self.settings.keepalive_s)
        self.client.loop_start()
        if not self._connected.wait(self.timeout_s):
            self.close()
            raise ConnectionError(
                f"消息服务器未接受连接 Broker {self.settings.host}:{self.settings.port} "
                "did not accept the connection; check [mqtt] credentials"
            )
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def statuses(self, device_ids: Iterable[str], wait_s: float = 2.0) -> dict[str, DeviceStatus]:
        """The retained heartbeat of each device (absent: none retained, or not within wait_s)."""
        wanted = set(device_ids)
        for device_id in wanted:
            self.client.subscribe(status_topic(device_id), qos=1)
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            with self._lock:
                if wanted <= self._heard:
                    break
            time.sleep(0.02)
        with self._lock:
            return {d: s for d, s in self._statuses.items() if d in wanted}

    def publish(self, topic: str, payload: bytes, qos: int, retain: bool) -> None:
        info = self.client.publish(topic, payload, qos=qos, retain=retain)
        info.wait_for_publish(self.timeout_s)
