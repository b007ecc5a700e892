"""A console's non-shared, clean-session MQTT connection: device status and stored taps in,
config, roster and commands out.

Every console keeps its own (client id `<console_id>-link`), so each one sees every device's
retained heartbeat and last-will, and every worker's stored-taps messages (pipeline.stored).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from cloud_ingest.pipeline.live import LiveState
from cloud_ingest.pipeline.mqtt_client import LinkState, configure_client
from cloud_ingest.pipeline.settings import PipelineSettings
from cloud_ingest.pipeline.stored import STORED_FILTER, STORED_ROOT, StoredTap, decode
from warmcard.contract import STATUS_FILTER, DeviceStatus, device_from_topic, parse_model
from warmcard.rejections import InvalidPayload, Reason

log = logging.getLogger(__name__)


class DeviceLink:
    def __init__(
        self,
        settings: PipelineSettings,
        live: LiveState,
        *,
        client_id: str,
        on_connect: Callable[[], None] | None = None,
        on_stored: Callable[[list[StoredTap]], None] | None = None,
        client: mqtt.Client | None = None,
    ) -> None:
        self.settings = settings
        self.live = live
        self.on_connected = on_connect
        self.on_stored = on_stored
        self.client = client or mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5
        )
        configure_client(self.client, settings.link)
        self.client.on_connect = self._on_connect
        self.link = LinkState("device link")
        self.client.on_disconnect = lambda *_: self.link.lost()
        self.client.on_subscribe = self.link.on_subscribe
        self.client.on_message = self._on_message
        self.connected = self.link.connected
        self.subscribed = self.link.subscribed  # status (and stored taps) subscriptions granted
        self.invalid = 0

    def _on_connect(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any
    ) -> None:
        if reason.is_failure:
            log.error("broker refused status connection: %s", reason)
            return
        topics = [(STATUS_FILTER, 1)]
        if self.on_stored is not None:
            topics.append((STORED_FILTER, 1))
        client.subscribe(topics)
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
        if message.topic.startswith(STORED_ROOT + "/"):
            self._stored(message)
            return
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

    def _stored(self, message: mqtt.MQTTMessage) -> None:
        try:
            taps = decode(bytes(message.payload))
        except InvalidPayload as exc:
            self.invalid += 1
            log.warning("ignored stored taps on %s: %s", message.topic, exc)
            return
        try:
            assert self.on_stored is not None
            self.on_stored(taps)
        except Exception:  # never kill paho's network thread; the next resync catches up
            log.exception("stored taps on %s not applied", message.topic)

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
        self.subscribed.clear()
