"""Retained, QoS 1 downlink: each device's DeviceConfig and its site's Roster."""

from __future__ import annotations

import logging
from typing import Protocol

from cloud_ingest.registry.store import Registry
from warmcard.contract import config_topic, roster_topic

log = logging.getLogger(__name__)


class Publisher(Protocol):
    def publish(self, topic: str, payload: bytes, qos: int, retain: bool) -> None: ...


class Downlink:
    """Publishes config and roster; `changed_only` skips payloads already sent this run."""

    def __init__(self, registry: Registry, publisher: Publisher) -> None:
        self.registry = registry
        self.publisher = publisher
        self._sent: dict[str, bytes] = {}

    def publish_all(self, changed_only: bool = False) -> int:
        """Returns how many messages were published."""
        count = 0
        rosters: dict[str, bytes] = {}
        for device in self.registry.devices():
            if device.site_id not in rosters:
                rosters[device.site_id] = self.registry.roster(device.site_id).to_bytes()
            for topic, payload in (
                (
                    config_topic(device.device_id),
                    self.registry.device_config(device.device_id).to_bytes(),
                ),
                (roster_topic(device.device_id), rosters[device.site_id]),
            ):
                if changed_only and self._sent.get(topic) == payload:
                    continue
                self.publisher.publish(topic, payload, 1, True)
                self._sent[topic] = payload
                count += 1
        if count:
            log.info("published %d config/roster message(s)", count)
        return count
