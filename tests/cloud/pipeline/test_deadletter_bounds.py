"""Issue #9.4: a device cannot fill the cloud's disk through the dead-letter store."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from cloud_ingest.pipeline.deadletter import DeadLetter, DeadLetterStore
from tests.support.databases import StoreAt
from warmcard.contract import events_topic, parse_event
from warmcard.rejections import InvalidPayload, Reason

MIB = 1024 * 1024
DAY_US = 86400 * 1_000_000


def rejected(device: str, payload: bytes, at_us: int) -> DeadLetter:
    """What the consumer keeps for a payload the contract refuses."""
    topic = events_topic(device)
    with pytest.raises(InvalidPayload) as refused:
        parse_event(payload, topic, received_us=at_us)
    return DeadLetter(at_us, topic, payload, refused.value.reason, refused.value.detail)


def size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))


def test_200_one_mib_payloads_keep_a_bounded_prefix_length_and_hash(tmp_path: Path) -> None:
    """Before: 200 x 1 MiB from one device grew deadletter.sqlite3 by 154 MiB in seconds."""
    path = tmp_path / "deadletter.sqlite3"
    now = 1_800_000_000_000_000
    store = DeadLetterStore(path, clock=lambda: now)
    before = size(path)
    junk = [os.urandom(MIB) for _ in range(4)]
    for n in range(200):
        store.add(rejected("k-flood", junk[n % 4], now + n))
    # The WAL is bounded by SQLite's autocheckpoint (1000 pages) and reused after it.
    assert size(path) - before < 6 * MIB
    assert store.counts() == {Reason.TOO_LARGE.value: 200}
    newest = store.list(limit=1)[0]
    assert newest.reason is Reason.TOO_LARGE
    assert newest.length == MIB and newest.truncated and len(newest.payload) == 4096
    assert newest.sha256 == hashlib.sha256(junk[199 % 4]).hexdigest()
    assert newest.payload == junk[199 % 4][:4096]
    assert newest.as_json()["payload_length"] == MIB
    store.close()  # checkpoints the WAL into the file
    grown = size(path) - before
    assert grown < 2 * MIB, grown  # 200 x 4 KiB prefixes and the index, not 200 MiB


def test_a_device_past_its_quota_is_counted_not_kept(store_at: StoreAt) -> None:
    now = 1_800_000_000_000_000
    store = DeadLetterStore(store_at("deadletters"), device_quota=20, clock=lambda: now)
    store.add_many([rejected("k-noisy", b"[]", now + n) for n in range(50)])
    store.add(rejected("k-quiet", b"[]", now))
    assert len(store.list(limit=1000)) == 21  # 20 of the noisy device, the quiet one's letter
    assert store.counts() == {Reason.NOT_AN_OBJECT.value: 51}  # nothing dropped silently
    assert store.overflow() == [("k-noisy", Reason.NOT_AN_OBJECT.value, 30, 60)]
    store.close()


def test_letters_older_than_the_retention_are_pruned(store_at: StoreAt) -> None:
    clock = [1_800_000_000_000_000]
    store = DeadLetterStore(store_at("deadletters"), retention_days=90, clock=lambda: clock[0])
    store.add(rejected("k-old", b"[]", clock[0]))
    clock[0] += 91 * DAY_US
    store.add(rejected("k-new", b"[]", clock[0]))
    assert [d.topic for d in store.list()] == [events_topic("k-new")]
    store.close()
