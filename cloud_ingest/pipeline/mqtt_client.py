"""paho clients for ingest: settings applied (credentials, TLS, backoff), reads buffered,
PUBLISH packets decoded in bulk."""

from __future__ import annotations

import logging
import ssl
import struct
import threading
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import paho.mqtt.client as mqtt
from paho.mqtt.enums import MQTTErrorCode, MQTTProtocolVersion

from warmcard.settings import MqttSettings

log = logging.getLogger(__name__)

READ_CHUNK = 256 * 1024
_PUBACK = struct.Struct("!BBH")  # MQTT 5 allows omitting reason 0x00 and empty properties
PUBACK = 0x40
PUBLISH = 0x30


class Publish(NamedTuple):
    """One QoS 0 or 1 PUBLISH as the bulk decoder hands it on (properties are not kept)."""

    topic: str
    payload: bytes
    qos: int
    retain: bool
    mid: int


class BatchingClient(mqtt.Client):
    """paho Client that reads the socket in large chunks and sends acks in one write.

    paho 2.x reads each packet with three or four recv() calls (command byte, each length
    byte, body) and one select() per packet, and `ack()` queues each PUBACK separately,
    waking the network thread and costing a send() each; at ingest rates that is most of
    the CPU. Here one recv() fills a buffer that paho's reads are served from (loop_read()
    keeps going while it holds data: select() cannot see bytes already off the socket), and
    `ack_many()` queues a batch's PUBACKs as one write. Measured on one core, receive+ack:
    21.6k msg/s with plain paho, 29.8k with buffered reads.

    With `on_publishes` set, the complete QoS 0/1 PUBLISH packets at the front of the buffer
    are decoded here in one pass and handed on as one list, instead of paho's per-packet
    decode (a Properties object, an MQTTMessage, a topic-matcher walk and a lock each: two
    fifths of the worker's CPU, docs/benchmarks.md). Anything else (other packets, QoS 2, a
    packet cut at the end of the buffer, an empty or non-UTF-8 topic) is left to paho, which
    then calls `on_message` as before. Relies on paho's private `_sock_recv`, `_packet_read`,
    `_in_packet` and `_packet_queue`, hence the paho-mqtt < 3 pin in pyproject.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._rbuf = bytearray()
        # Takes a list of PUBLISH packets, on paho's network thread (like on_message).
        self.on_publishes: Callable[[list[Publish]], None] | None = None

    def _sock_recv(self, bufsize: int) -> bytes:
        buf = self._rbuf
        if not buf:
            data = super()._sock_recv(READ_CHUNK)
            if not data:
                return data  # connection closed
            buf += data
        chunk = bytes(buf[:bufsize])
        del buf[:bufsize]  # O(1) at the front of a bytearray in CPython
        return chunk

    def _packet_read(self) -> MQTTErrorCode:
        sink = self.on_publishes
        if sink is not None and self._rbuf and self._in_packet["command"] == 0:
            taken = self._take_publishes()
            if taken:
                with self._msgtime_mutex:
                    self._last_bytes_received = mqtt.time_func()  # the keepalive's clock
                sink(taken)
                if not self._rbuf:
                    return MQTTErrorCode.MQTT_ERR_SUCCESS
        return super()._packet_read()

    def _take_publishes(self) -> list[Publish]:
        """Remove the complete QoS 0/1 PUBLISH packets from the front of the read buffer."""
        buf = self._rbuf
        size = len(buf)
        v5 = self._protocol == MQTTProtocolVersion.MQTTv5
        taken: list[Publish] = []
        pos = 0
        while pos < size:
            header = buf[pos]
            qos = (header >> 1) & 3
            if header & 0xF0 != PUBLISH or qos > 1:
                break
            body = _varint(buf, pos + 1, size)
            if body is None:
                break
            length, start = body
            end = start + length
            if end > size or length < 2:
                break  # cut at the end of the buffer (paho reads on), or malformed
            topic_end = start + 2 + (buf[start] << 8 | buf[start + 1])
            data = topic_end + 2 if qos else topic_end
            if topic_end == start + 2 or data > end:
                break  # an empty topic (a topic alias) or malformed: paho's to judge
            mid = buf[topic_end] << 8 | buf[topic_end + 1] if qos else 0
            if v5:
                props = _varint(buf, data, end)
                if props is None or props[1] + props[0] > end:
                    break
                data = props[1] + props[0]
            try:
                topic = buf[start + 2 : topic_end].decode()
            except UnicodeDecodeError:
                break
            taken.append(Publish(topic, bytes(buf[data:end]), qos, bool(header & 1), mid))
            pos = end
        del buf[:pos]
        return taken

    def loop_read(self, max_packets: int = 1) -> MQTTErrorCode:
        rc = super().loop_read(max_packets)
        while rc == MQTTErrorCode.MQTT_ERR_SUCCESS and self._rbuf and self._sock is not None:
            rc = super().loop_read(max_packets)
        return rc

    def ack_many(self, mids: Sequence[int]) -> None:
        """PUBACK every QoS 1 message id in one queued write (same bytes as `ack(mid, 1)`)."""
        if mids:
            pack = _PUBACK.pack
            blob = b"".join([pack(PUBACK, 2, mid) for mid in mids])
            self._packet_queue(PUBACK, blob, 0, 0)

    def reconnect(self) -> MQTTErrorCode:
        self._rbuf.clear()  # bytes of the old connection must not leak into the new one
        return super().reconnect()


def _varint(buf: bytearray, pos: int, end: int) -> tuple[int, int] | None:
    """MQTT's variable byte integer at `pos`: (value, position after it); None if cut or over
    four bytes long."""
    value = 0
    for shift in (0, 7, 14, 21):
        if pos >= end:
            return None
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
    return None


def configure_client(client: mqtt.Client, settings: MqttSettings) -> None:
    """Apply credentials, TLS and reconnect backoff."""
    if settings.username is not None:
        password = settings.password.get_secret_value() if settings.password else None
        client.username_pw_set(settings.username, password)
    if settings.tls:
        client.tls_set(
            ca_certs=str(settings.ca_file) if settings.ca_file else None,
            certfile=str(settings.cert_file) if settings.cert_file else None,
            keyfile=str(settings.key_file) if settings.key_file else None,
            tls_version=ssl.PROTOCOL_TLS_CLIENT,
        )
    # paho's loop thread reconnects by itself; these bound its backoff. The cloud's clients sit
    # next to the broker, and a handful of them: a broker back after a crash (systemd restarts
    # it in seconds) should see them again within seconds, not after a 30 s back-off.
    client.reconnect_delay_set(min_delay=1, max_delay=5)


class LinkState:
    """`connected` and `subscribed` of one paho connection, kept by its callbacks.

    `subscribed` is set only once the broker granted every subscription asked for: until then a
    message published for us may not reach us.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self.connected = threading.Event()
        self.subscribed = threading.Event()

    def on_subscribe(
        self, client: mqtt.Client, userdata: Any, mid: int, reasons: Any, props: Any
    ) -> None:
        if any(r.is_failure for r in reasons):
            log.error("broker refused the %s subscription: %s", self.name, reasons)
            return
        self.subscribed.set()

    def lost(self) -> None:
        self.connected.clear()
        self.subscribed.clear()
