"""A non-shared, clean-session MQTT connection: device status in, config and roster out.

Every ingest worker keeps its own (client id `<client_id>-status`), so each one sees every
device's retained heartbeat and last-will.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from cloud_ingest.pipeline.live import LiveState
from cloud_ingest.pipeline.mqtt_client import configure_client
from cloud_ingest.pipeline.settings import PipelineSettings
from warmcard.contract import (
    STATUS_FILTER,
    DeviceStatus,
    InvalidPayload,
    Reason,
    device_from_topic,
    parse_model,
)

log = logging.getLogger(__name__)


class DeviceLink:
    def __init__(
        self,
        settings: PipelineSettings,
        live: LiveState,
        *,
        on_connect: Callable[[], None] | None = None,
        client: mqtt.Client | None = None,
    ) -> None:
        self.settings = settings
        self.live = live
        self.on_connected = on_connect
        self.client = client or mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"{settings.client_id}-status",
            protocol=mqtt.MQTTv5,
        )
        configure_client(self.client, settings.link)
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self.connected = threading.Event()
        self.invalid = 0

    def _on_connect(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any
    ) -> None:
        if reason.is_failure:
            log.error("broker refused status connection: %s", reason)
            return
        client.subscribe(STATUS_FILTER, qos=1)
        self.connected.set()
        if self.on_connected is not None:
            # Republish downlink on every (re)connect: retained and idempotent, and it repairs a
            # broker that lost its retained store.
            threading.Thread(target=self._safe_on_connected, daemon=True).start()

    def _safe_on_connected(self) -> None:
        try:
            assert self.on_connected is not None
            self.on_connected()
        except Exception:
            log.exception("downlink publish failed")

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        try:
            device_id = device_from_topic(message.topic)
            if not message.payload:
                self.live.update_status(device_id, None)  # retained status cleared
                return
            status = parse_model(DeviceStatus, bytes(message.payload))
            if status.device_id != device_id:
                raise InvalidPayload(Reason.DEVICE_MISMATCH, f"payload says {status.device_id}")
        except InvalidPayload as exc:
            self.invalid += 1
            log.warning("ignored status on %s: %s", message.topic, exc)
            return
        self.live.update_status(device_id, status)

    def publish(self, topic: str, payload: bytes, qos: int, retain: bool) -> None:
        self.client.publish(topic, payload, qos=qos, retain=retain)

    def start(self) -> None:
        self.client.connect_async(
            self.settings.link.host,
            self.settings.link.port,
            keepalive=self.settings.link.keepalive_s,
            clean_start=True,
        )
        self.client.loop_start()

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
        self.connected.clear()
