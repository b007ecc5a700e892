"""BatchingClient's bulk PUBLISH decoding, against exact MQTT 5 byte frames."""

from __future__ import annotations

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from cloud_ingest.pipeline.mqtt_client import BatchingClient, Publish


def varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def publish(
    topic: bytes, payload: bytes, *, qos: int = 1, mid: int = 7, retain: bool = False,
    props: bytes = b"", dup: bool = False,
) -> bytes:  # fmt: skip
    body = len(topic).to_bytes(2, "big") + topic
    if qos:
        body += mid.to_bytes(2, "big")
    body += varint(len(props)) + props + payload
    header = 0x30 | (0x08 if dup else 0) | qos << 1 | (1 if retain else 0)
    return bytes([header]) + varint(len(body)) + body


@pytest.fixture
def client() -> BatchingClient:
    return BatchingClient(CallbackAPIVersion.VERSION2, client_id="t", protocol=mqtt.MQTTv5)


def take(client: BatchingClient, data: bytes) -> tuple[list[Publish], bytes]:
    client._rbuf[:] = data
    return client._take_publishes(), bytes(client._rbuf)


TOPIC = b"warmcard/v1/devices/k-001/events"


def test_whole_packets_are_taken_with_their_flags_and_ids(client: BatchingClient) -> None:
    big = b"x" * 300  # a two-byte remaining length
    frames = (
        publish(TOPIC, b'{"v":1}', mid=0x1234)
        + publish(TOPIC, b"", qos=0, retain=True)
        # payload format indicator and a user property: skipped, not part of the payload
        + publish(TOPIC, big, mid=65535, dup=True, props=b"\x01\x01\x26\x00\x01k\x00\x01v")
    )
    taken, left = take(client, frames)
    assert taken == [
        Publish(TOPIC.decode(), b'{"v":1}', 1, False, 0x1234),
        Publish(TOPIC.decode(), b"", 0, True, 0),
        Publish(TOPIC.decode(), big, 1, False, 65535),
    ]
    assert left == b""


def test_a_packet_cut_at_the_end_of_the_buffer_is_left_whole(client: BatchingClient) -> None:
    second = publish(TOPIC, b"y" * 200, mid=8)
    for cut in (1, 2, 3, 10, len(second) - 1):
        taken, left = take(client, publish(TOPIC, b"a") + second[:cut])
        assert [p.payload for p in taken] == [b"a"]
        assert left == second[:cut]


@pytest.mark.parametrize(
    "frame",
    [
        b"\xd0\x00",  # PINGRESP
        b"\x40\x02\x00\x07",  # PUBACK
        publish(TOPIC, b"q2", qos=2),  # QoS 2 needs paho's PUBREC handshake
        publish(b"", b"alias", props=b"\x03\x23\x00\x01"),  # a topic alias: no topic
        publish(b"warmcard/\xff", b"not utf-8"),
        bytes([0x32, 0x01, 0x00]),  # shorter than its topic length
        bytes([0x32]) + b"\xff\xff\xff\xff\x01",  # a remaining length of five bytes
        bytes([0x32, 0x05, 0x00, 0x01, 0x61, 0x00]),  # no room for the packet id
        bytes([0x32, 0x06, 0x00, 0x01, 0x61, 0x00, 0x01, 0x09]),  # properties overrun the packet
    ],
)
def test_anything_else_is_left_to_paho_from_where_it_starts(
    client: BatchingClient, frame: bytes
) -> None:
    taken, left = take(client, publish(TOPIC, b"first") + frame + publish(TOPIC, b"later"))
    assert [p.payload for p in taken] == [b"first"]
    assert left == frame + publish(TOPIC, b"later")
