"""The MQTT consumer: events in, InfluxDB points out, acked to the broker only once stored.

Delivery guarantees, in order of importance:
- A QoS 1 message is acked (PUBACK) only after InfluxDB accepted the batch holding it, or,
  for an invalid one, after it is committed to the dead-letter store. Until then the broker
  keeps it and redelivers it after a reconnect.
- While InfluxDB is down nothing is acked and nothing is dropped: the batch is retried with
  backoff, and once ReceiveMaximum messages are unacked the broker stops sending (that is the
  backpressure; the rest waits in our persistent session on the broker).
- Redelivery is harmless: a tap's point identity makes a second write overwrite the first
  (see cloud_ingest.pipeline.lineprotocol), and live state dedups by (device, seq).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

from cloud_ingest.db import STORE_UNAVAILABLE
from cloud_ingest.errors import InvalidPoint, StorageRejected, StorageUnavailable
from cloud_ingest.pipeline.conflicts import SeenIndex
from cloud_ingest.pipeline.deadletter import DeadLetter, DeadLetterStore
from cloud_ingest.pipeline.influx import Storage
from cloud_ingest.pipeline.lineprotocol import SUSPECT_MEASUREMENT, encode_tap
from cloud_ingest.pipeline.live import LiveEvent, LiveState
from cloud_ingest.pipeline.mqtt_client import BatchingClient, LinkState, Publish, configure_client
from cloud_ingest.pipeline.provenance import Mismatch, Provenance
from cloud_ingest.pipeline.settings import PipelineSettings
from cloud_ingest.pipeline.stored import StoredTap
from cloud_ingest.registry.store import Registry
from warmcard.contract import EVENTS_FILTER, TapEvent, parse_event, shared_subscription
from warmcard.rejections import InvalidPayload, Reason
from warmcard.timestamps import now_us

log = logging.getLogger(__name__)

Clock = Callable[[], int]
Sleep = Callable[[float], bool]  # waits up to n seconds; True when asked to stop
# Called after a batch is stored, before it is acked, with the taps InfluxDB accepted.
StoredHook = Callable[[list[StoredTap]], object]
# Called after suspect taps (stored apart, counted nowhere) are stored, with what did not match.
SuspectHook = Callable[[list[Mismatch]], object]
# While a store (InfluxDB, the database) is unavailable the batch in hand is tried again,
# waiting this long between, doubling.
STORE_RETRY_MIN_S = 0.1
STORE_RETRY_MAX_S = 5.0


@dataclass(slots=True)
class Incoming:
    """One message as received; `generation` is the connection it arrived on."""

    topic: str
    payload: bytes
    qos: int
    retain: bool
    mid: int
    generation: int
    received_us: int


@dataclass
class Metrics:
    """Counters for /metrics and /healthz."""

    received: int = 0
    stored: int = 0
    acked: int = 0
    batches: int = 0
    write_retries: int = 0
    dead_letters: Counter[str] = field(default_factory=Counter)
    suspects: Counter[str] = field(default_factory=Counter)
    storage_ok: bool = True
    last_storage_error: str | None = None
    last_batch_us: int | None = None

    def held(self, error: str) -> None:
        """A store (InfluxDB, the database) could not take the batch in hand: it is held
        unacked and tried again."""
        self.storage_ok = False
        self.last_storage_error = error[:500]
        self.write_retries += 1

    def as_json(self) -> dict[str, Any]:
        return {
            "received": self.received,
            "stored": self.stored,
            "acked": self.acked,
            "batches": self.batches,
            "write_retries": self.write_retries,
            "dead_letters": dict(self.dead_letters),
            "suspect_taps": dict(self.suspects),
            "storage_ok": self.storage_ok,
            "last_storage_error": self.last_storage_error,
        }


class BatchProcessor:
    """Validates, stamps, stores and dead-letters one batch; knows nothing of MQTT."""

    def __init__(
        self,
        storage: Storage,
        deadletters: DeadLetterStore,
        registry: Registry,
        live: LiveState | None,
        metrics: Metrics,
        *,
        clock: Clock = now_us,
        registry_refresh_s: float = 1.0,
        seen: SeenIndex | None = None,
        provenance: Provenance | None = None,
    ) -> None:
        self.storage = storage
        self.deadletters = deadletters
        self.registry = registry
        self.live = live
        self.metrics = metrics
        self.clock = clock
        self.registry_refresh_us = int(registry_refresh_s * 1_000_000)
        self._last_refresh_us = 0
        self.seen = seen  # conflict detection (cloud_ingest.pipeline.conflicts); None: off
        self.on_stored: list[StoredHook] = []
        # card -> person -> site against the registry's history; None: off
        self.provenance = provenance
        self.on_suspect: list[SuspectHook] = []
        self._suspect: dict[int, Mismatch] = {}  # id(Incoming) -> mismatch, this batch

    def split_suspects(
        self, live: list[StoredTap], good: list[Incoming]
    ) -> tuple[list[StoredTap], list[Incoming], list[Mismatch]]:
        """Stored taps that count, apart from the suspect ones (which count nowhere)."""
        if not self._suspect:
            return live, good, []
        keep = [i for i, msg in enumerate(good) if id(msg) not in self._suspect]
        found = [self._suspect[id(msg)] for msg in good if id(msg) in self._suspect]
        return [live[i] for i in keep], [good[i] for i in keep], found

    def after_suspects(self, found: list[Mismatch]) -> None:
        """Report stored suspect taps upwards (alerts); a failing hook never stalls ingest."""
        for m in found:
            self.metrics.suspects[m.what] += 1
            log.warning("suspect tap stored apart: %s seq %d: %s", m.device_id, m.seq, m.detail_en)
        for hook in self.on_suspect:
            try:
                hook(found)
            except Exception:
                log.exception("suspect hook %r failed", hook)

    def after_store(self, taps: list[StoredTap]) -> None:
        """Run the stored-batch hooks (the stored-taps publisher); a failing hook never stalls
        ingest: consoles converge from InfluxDB whatever a hook missed."""
        for hook in self.on_stored:
            try:
                hook(taps)
            except Exception:
                log.exception("stored-batch hook %r failed", hook)

    def _site_of(self, device_id: str) -> str | None:
        site = self.registry.site_of(device_id)
        if site is None:
            # Maybe just imported (by another process): reload, at most once a second.
            now = self.clock()
            if now - self._last_refresh_us >= self.registry_refresh_us:
                self._last_refresh_us = now
                self.registry.refresh()
                site = self.registry.site_of(device_id)
        return site

    def classify(
        self, batch: list[Incoming]
    ) -> tuple[list[str], list[StoredTap], list[Incoming], list[DeadLetter], list[Incoming]]:
        """Split a batch into points to write and letters to keep."""
        lines: list[str] = []
        live: list[StoredTap] = []
        good: list[Incoming] = []
        letters: list[DeadLetter] = []
        bad: list[Incoming] = []
        events: list[TapEvent] = []
        stamps: list[int] = []
        self._suspect = {}
        provenance = self.provenance.current() if self.provenance else None
        for msg in batch:
            try:
                if msg.retain:
                    raise InvalidPayload(Reason.RETAINED, "events must not be published retained")
                if msg.qos == 0:
                    raise InvalidPayload(Reason.QOS0, "events must be published at QoS 1")
                event = parse_event(msg.payload, msg.topic, received_us=msg.received_us)
                site = self._site_of(event.device_id)
                if site is None:
                    raise InvalidPayload(
                        Reason.UNKNOWN_DEVICE,
                        f"device {event.device_id} is not in the registry; import it",
                    )
                ts_us = event.ts_us
                mismatch = (
                    provenance.check(site, event, ts_us, msg.received_us) if provenance else None
                )
                if mismatch is None:
                    line = encode_tap(event, site, ts_us)
                else:
                    # Kept (no tap is lost) where no count reads it, and reported.
                    line = encode_tap(event, site, ts_us, measurement=SUSPECT_MEASUREMENT)
                    self._suspect[id(msg)] = mismatch
            except InvalidPayload as exc:
                letters.append(
                    DeadLetter(msg.received_us, msg.topic, msg.payload, exc.reason, exc.detail)
                )
                bad.append(msg)
                continue
            except InvalidPoint as exc:  # unreachable for contract-valid ids; never stall on it
                letters.append(
                    DeadLetter(msg.received_us, msg.topic, msg.payload, Reason.SCHEMA, str(exc))
                )
                bad.append(msg)
                continue
            lines.append(line)
            live.append(
                StoredTap(site, LiveEvent.from_tap(event, ts_us), event.event_id, event.card_uid)
            )
            good.append(msg)
            events.append(event)
            stamps.append(ts_us)
        if self.seen is not None and events:
            conflicts = self.seen.admit(events, self.clock(), stamps)
            if conflicts:
                for i, conflict in conflicts.items():
                    msg = good[i]
                    log.error("conflict, dead-lettered: %s", conflict.detail)
                    letters.append(
                        DeadLetter(
                            msg.received_us,
                            msg.topic,
                            msg.payload,
                            Reason.CONFLICT,
                            conflict.detail,
                        )
                    )
                    bad.append(msg)
                keep = [i for i in range(len(good)) if i not in conflicts]
                lines = [lines[i] for i in keep]
                live = [live[i] for i in keep]
                good = [good[i] for i in keep]
        return lines, live, good, letters, bad

    def keep_letters(self, letters: list[DeadLetter]) -> None:
        self.deadletters.add_many(letters)
        for letter in letters:
            self.metrics.dead_letters[letter.reason.value] += 1

    def write(
        self,
        lines: list[str],
        live: list[StoredTap],
        good: list[Incoming],
        sleep: Sleep,
    ) -> tuple[list[StoredTap], list[Incoming]] | None:
        """Store the points, retrying while the store is unavailable; None if asked to stop.

        Returns what was stored; points the store refuses as bad data are dead-lettered
        (reason `conflict`) one by one, after bisecting the batch to find them.
        """
        delay = STORE_RETRY_MIN_S
        while True:
            try:
                return self._write_isolating(lines, live, good)
            except StorageUnavailable as exc:
                self.metrics.held(str(exc))
                log.warning("%s (retry in %.1fs, %d messages held unacked)", exc, delay, len(lines))
                if sleep(delay):
                    return None
                delay = min(delay * 2, STORE_RETRY_MAX_S)

    def _write_isolating(
        self, lines: list[str], live: list[StoredTap], good: list[Incoming]
    ) -> tuple[list[StoredTap], list[Incoming]]:
        try:
            self.storage.write(lines)
        except StorageRejected as exc:
            if len(lines) == 1:
                msg = good[0]
                log.error("point refused, dead-lettered: %s", exc)
                self.keep_letters(
                    [DeadLetter(msg.received_us, msg.topic, msg.payload, Reason.CONFLICT, str(exc))]
                )
                return [], []
            # Rewriting the accepted half is harmless: the points overwrite themselves.
            mid = len(lines) // 2
            live_a, good_a = self._write_isolating(lines[:mid], live[:mid], good[:mid])
            live_b, good_b = self._write_isolating(lines[mid:], live[mid:], good[mid:])
            return live_a + live_b, good_a + good_b
        self.metrics.storage_ok = True
        self.metrics.stored += len(lines)
        return live, good


class Consumer:
    """Persistent-session, shared-subscription MQTT 5 consumer with manual acks.

    paho's network thread (loop_start) owns the socket and reconnects with backoff; a worker
    thread forms batches and acks. `start()`/`stop()` are called by the service lifespan.
    """

    def __init__(
        self,
        settings: PipelineSettings,
        processor: BatchProcessor,
        *,
        client: mqtt.Client | None = None,
        clock: Clock = now_us,
    ) -> None:
        self.settings = settings
        self.processor = processor
        self.metrics = processor.metrics
        self.clock = clock
        self.client = client or BatchingClient(
            CallbackAPIVersion.VERSION2,
            client_id=settings.client_id,
            protocol=mqtt.MQTTv5,
            manual_ack=True,
        )
        configure_client(self.client, settings.mqtt)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message
        if isinstance(self.client, BatchingClient):
            self.client.on_publishes = self._on_publishes
        self.link = LinkState("events")
        self.client.on_subscribe = self.link.on_subscribe
        self._queue: deque[Incoming] = deque()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._worker: threading.Thread | None = None
        self._generation = 0
        self.connected = self.link.connected
        self.subscribed = self.link.subscribed
        self.batch_max = settings.batch_max
        self.batch_s = settings.batch_ms / 1000
        # Called each time round the batcher loop, and while it waits out a store outage:
        # the systemd watchdog's proof that the loop is alive.
        self.on_tick: Callable[[], None] = lambda: None

    # ------------------------------------------------------------------ paho callbacks

    def _on_connect(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any
    ) -> None:
        if reason.is_failure:
            log.error("broker refused ingest connection: %s", reason)
            return
        # Acks of messages from an earlier connection must not be sent: the broker redelivers
        # those with their old packet ids, and a late ack could hit a reused id.
        self._generation += 1
        self.connected.set()
        log.info(
            "connected to broker as %s (session %s)",
            self.settings.client_id,
            "resumed" if flags.session_present else "new",
        )
        # A persistent session already holds the subscription, but subscribing again is
        # idempotent and covers a session that expired.
        options = SubscribeOptions(qos=1, retainAsPublished=True)
        client.subscribe(
            shared_subscription(self.settings.share_group, EVENTS_FILTER), options=options
        )

    def _on_disconnect(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any
    ) -> None:
        self.link.lost()
        if not self._stop.is_set():
            log.warning("disconnected from broker (%s); reconnecting", reason)

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        # The hot path: keep it to an append.
        queue = self._queue
        queue.append(
            Incoming(
                message.topic,
                message.payload,  # type: ignore[arg-type]  # bytes from the socket
                message.qos,
                message.retain,
                message.mid,
                self._generation,
                self.clock(),
            )
        )
        n = len(queue)
        if n == 1 or n >= self.batch_max:
            self._wake.set()

    def _on_publishes(self, publishes: list[Publish]) -> None:
        # The hot path, for what BatchingClient decoded in bulk: one extend per socket read.
        queue = self._queue
        generation, received_us = self._generation, self.clock()
        empty = not queue
        queue.extend(
            [Incoming(t, b, q, r, m, generation, received_us) for t, b, q, r, m in publishes]
        )
        if empty or len(queue) >= self.batch_max:
            self._wake.set()

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]  # paho: no hints
        props.SessionExpiryInterval = self.settings.session_expiry_s
        props.ReceiveMaximum = self.settings.receive_maximum
        self.client.connect_async(
            self.settings.mqtt.host,
            self.settings.mqtt.port,
            keepalive=self.settings.mqtt.keepalive_s,
            clean_start=False,
            properties=props,
        )
        self._stop.clear()
        self._worker = threading.Thread(target=self._run, name="ingest-batcher", daemon=True)
        self._worker.start()
        self.client.loop_start()

    def stop(self, timeout: float = 10.0) -> None:
        """Finish the batch in hand if the store takes it, then disconnect (session kept)."""
        self._stop.set()
        self._wake.set()
        if self._worker is not None:
            self._worker.join(timeout)
        self.client.disconnect()
        self.client.loop_stop()
        self.connected.clear()

    @property
    def pending(self) -> int:
        return len(self._queue)

    # ------------------------------------------------------------------ worker

    def _sleep(self, seconds: float) -> bool:
        self.on_tick()
        return self._stop.wait(seconds)

    def _run(self) -> None:
        queue = self._queue
        delay = STORE_RETRY_MIN_S
        while not self._stop.is_set():
            self.on_tick()
            if not queue:
                self._wake.wait(0.5)
                self._wake.clear()
                continue
            deadline = time.monotonic() + self.batch_s
            while len(queue) < self.batch_max and not self._stop.is_set():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._wake.wait(remaining)
                self._wake.clear()
            n = min(len(queue), self.batch_max)
            batch = [queue.popleft() for _ in range(n)]
            try:
                self._handle(batch)
                delay = STORE_RETRY_MIN_S
            except STORE_UNAVAILABLE as exc:
                # The database (conflict index, dead letters) is down: hold the batch, in
                # order, and try it again; nothing is acked until it is stored.
                queue.extendleft(reversed(batch))
                self.metrics.received -= n  # counted again when it goes through
                self.metrics.held(f"database unavailable: {exc}")
                log.warning(
                    "database unavailable (%s); %d messages held unacked, retry in %.1fs",
                    str(exc).splitlines()[0][:200], len(queue), delay,
                )  # fmt: skip
                self._sleep(delay)
                delay = min(delay * 2, STORE_RETRY_MAX_S)
            except Exception:
                # Unexpected (e.g. dead-letter disk full): keep the messages unacked, so the
                # broker redelivers them after we reconnect, and keep consuming.
                log.exception("batch of %d failed; left unacked for redelivery", n)
                self._sleep(1.0)

    def _handle(self, batch: list[Incoming]) -> None:
        p = self.processor
        self.metrics.received += len(batch)
        lines, live, good, letters, bad = p.classify(batch)
        if letters:
            p.keep_letters(letters)
            self._ack(bad)
        if lines:
            stored = p.write(lines, live, good, self._sleep)
            if stored is None:
                return  # stopping while the store is down: leave unacked
            taps_ok, _, suspects = p.split_suspects(*stored)
            if p.live is not None and taps_ok:
                p.live.apply([t.live for t in taps_ok])
            # Before the ack: the stored-taps message leaves on this connection ahead of the
            # PUBACKs, so a console never misses a tap the kiosk already saw acknowledged.
            p.after_store(taps_ok)
            self._ack(good)  # refused points were dead-lettered inside write()
            if suspects:
                p.after_suspects(suspects)
        self.metrics.batches += 1
        self.metrics.last_batch_us = self.clock()

    def _ack(self, messages: list[Incoming]) -> None:
        generation = self._generation
        mids = [m.mid for m in messages if m.qos == 1 and m.generation == generation]
        client = self.client
        if isinstance(client, BatchingClient):
            client.ack_many(mids)
        else:
            for mid in mids:
                client.ack(mid, 1)
        self.metrics.acked += len(mids)
