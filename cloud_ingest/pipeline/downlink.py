"""Retained, QoS 1 downlink: each device's DeviceConfig and its site's Roster.

A roster larger than one broker packet allows is split (warmcard.contract.split_roster): part 1
on the roster topic, parts 2..n on `roster/<i>`, published head last so a kiosk that is online
has the parts when the head names them. Parts this run published before and no longer needs are
cleared (an empty retained message), so the broker keeps no stale names.
"""

from __future__ import annotations

import logging
import threading
from typing import Protocol

from cloud_ingest.registry.store import Registry
from warmcard.contract import config_topic, roster_part_topic, roster_topic
from warmcard.roster_split import split_roster

log = logging.getLogger(__name__)


class Publisher(Protocol):
    def publish(self, topic: str, payload: bytes, qos: int, retain: bool) -> None: ...


class Downlink:
    """Publishes config and roster; `changed_only` skips payloads already sent this run."""

    def __init__(self, registry: Registry, publisher: Publisher) -> None:
        self.registry = registry
        self.publisher = publisher
        self._sent: dict[str, bytes] = {}
        self._parts_sent: dict[str, int] = {}  # device -> parts of the roster last published
        # The sync loop and a console request (an enrol window) may both publish.
        self._lock = threading.Lock()

    def publish_all(self, changed_only: bool = False) -> int:
        """Returns how many messages were published."""
        with self._lock:
            return self._publish_all(changed_only)

    def _publish_all(self, changed_only: bool) -> int:
        count = 0
        rosters: dict[str, list[bytes]] = {}
        for device in self.registry.devices():
            device_id = device.device_id
            if device.site_id not in rosters:
                roster = self.registry.roster(device.site_id)
                rosters[device.site_id] = [p.to_bytes() for p in split_roster(roster)]
            parts = rosters[device.site_id]
            messages = [
                (roster_part_topic(device_id, n), p) for n, p in enumerate(parts, start=1) if n > 1
            ]
            messages += [
                (roster_topic(device_id), parts[0]),
                (config_topic(device_id), self.registry.device_config(device_id).to_bytes()),
            ]
            for topic, payload in messages:
                if changed_only and self._sent.get(topic) == payload:
                    continue
                self.publisher.publish(topic, payload, 1, True)
                self._sent[topic] = payload
                count += 1
            for stale in range(len(parts) + 1, self._parts_sent.get(device_id, 1) + 1):
                topic = roster_part_topic(device_id, stale)
                self.publisher.publish(topic, b"", 1, True)
                self._sent.pop(topic, None)
                count += 1
            self._parts_sent[device_id] = len(parts)
        if count:
            log.info("published %d config/roster message(s)", count)
        return count
