"""paho clients for ingest: settings applied (credentials, TLS, backoff), reads buffered."""

from __future__ import annotations

import logging
import ssl
import struct
import threading
from collections.abc import Sequence
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import MQTTErrorCode

from warmcard.settings import MqttSettings

log = logging.getLogger(__name__)

READ_CHUNK = 256 * 1024
_PUBACK = struct.Struct("!BBH")  # MQTT 5 allows omitting reason 0x00 and empty properties
PUBACK = 0x40


class BatchingClient(mqtt.Client):
    """paho Client that reads the socket in large chunks and sends acks in one write.

    paho 2.x reads each packet with three or four recv() calls (command byte, each length
    byte, body) and one select() per packet, and `ack()` queues each PUBACK separately,
    waking the network thread and costing a send() each; at ingest rates that is most of
    the CPU. Here one recv() fills a buffer that paho's reads are served from (loop_read()
    keeps going while it holds data: select() cannot see bytes already off the socket), and
    `ack_many()` queues a batch's PUBACKs as one write. Measured on one core, receive+ack:
    21.6k msg/s with plain paho, 29.8k with buffered reads. Relies on paho's private
    `_sock_recv` and `_packet_queue`, hence the paho-mqtt < 3 pin in pyproject.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._rbuf = bytearray()

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
    # paho's loop thread reconnects by itself; these bound its backoff.
    client.reconnect_delay_set(min_delay=1, max_delay=30)


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
