"""One ingest worker (`warmcard ingest`): consume, validate, conflict-check, store, tell, ack.

Stateless apart from the shared stores: any number run on the shared subscription and any one
may die at any moment; a message it held unacked is redelivered to another. Nothing here
serves people: the console (`warmcard console`) is another process, so no web load can delay
an acknowledgement. Its own HTTP port answers only /healthz and /metrics for systemd, load
balancers and Prometheus.

    worker = IngestWorker(IngestSettings.load("ingest.toml"))
    worker.start()       # returns at once; connects and consumes in background threads
    ...
    worker.stop()
"""

from __future__ import annotations

import gc
import logging

import paho.mqtt.client as mqtt

from cloud_ingest.alerts.engine import AlertEngine
from cloud_ingest.errors import IngestError
from cloud_ingest.pipeline.consumer import BatchProcessor, Consumer, Metrics
from cloud_ingest.pipeline.influx import InfluxV1, Storage
from cloud_ingest.pipeline.live import Clock
from cloud_ingest.pipeline.provenance import Mismatch, Provenance
from cloud_ingest.pipeline.stored import StoredTap, encode, stored_topic
from cloud_ingest.process import CloudProcess
from cloud_ingest.settings import IngestSettings
from warmcard.timestamps import now_us
from warmcard.watchdog import Watchdog

log = logging.getLogger(__name__)


class StoredPublisher:
    """The stored-batch hook of a worker: publishes what InfluxDB accepted (pipeline.stored)."""

    def __init__(self, client: mqtt.Client, worker: str) -> None:
        self.client = client
        self.topic = stored_topic(worker)
        self.taps = 0  # taps published, for /healthz and tests

    def __call__(self, taps: list[StoredTap]) -> None:
        for payload in encode(taps):
            self.client.publish(self.topic, payload, qos=1, retain=False)
        self.taps += len(taps)


class IngestWorker(CloudProcess):
    def __init__(
        self,
        settings: IngestSettings,
        *,
        storage: Storage | None = None,
        clock: Clock = now_us,
        watchdog: Watchdog | None = None,
    ) -> None:
        super().__init__(settings, clock, watchdog, "batcher")
        self.storage = storage or InfluxV1(settings.influx)
        self.metrics = Metrics()
        self.processor = BatchProcessor(
            self.storage,
            self.deadletters,
            self.registry,
            None,  # live state is the consoles', fed by the stored-taps channel
            self.metrics,
            clock=clock,
            seen=self.seen,
            provenance=Provenance(self.registry, roster_lag_s=settings.roster_lag_s),
        )
        # Taps that do not match the registry are stored apart and alerted from here: the
        # alert store is shared with the consoles, which show and notify.
        self.alerts = AlertEngine(
            settings.alerts,
            self.registry,
            None,
            None,
            console_db_path=settings.store("console"),
            location=settings.store("alerts"),
            default_tz=settings.tz,
            clock=clock,
        )
        self.processor.on_suspect.append(self._alert_suspects)
        self.consumer = Consumer(settings, self.processor, clock=clock)
        self.publisher = StoredPublisher(self.consumer.client, settings.client_id)
        self.processor.on_stored.append(self.publisher)
        # systemd (Type=notify): READY once started, pings only while the batcher turns.
        self.consumer.on_tick = lambda: self.watchdog.beat("batcher")
        self.started = False

    def _alert_suspects(self, found: list[Mismatch]) -> None:
        self.alerts.refresh_site_paths()  # rare: read where the sites sit now
        self.alerts.on_suspect(found)

    def start(self) -> None:
        """Connect; InfluxDB being down at start is survived (the consumer waits and retries)."""
        # What exists now (settings, registry, FastAPI, pydantic's schemas: ~100k objects) lives
        # as long as the process; frozen, the collector stops walking it on every full pass,
        # which the garbage of a few batches triggers (docs/benchmarks.md).
        gc.freeze()
        try:
            self.storage.ensure_database()
        except IngestError as exc:
            log.warning("InfluxDB not ready at start (%s); batches wait for it", exc)
        self.consumer.start()
        self.watchdog.start()
        self.watchdog.ready(f"接收中 ingest worker {self.settings.client_id} running")
        self.started = True

    def stop(self) -> None:
        self.watchdog.close()
        self.consumer.stop()
        self.storage.close()
        self.stores.close()
        self.alerts.stop()  # its store and its console store
        self.started = False

    def health(self) -> dict[str, object]:
        ok = self.consumer.connected.is_set() and self.metrics.storage_ok
        return {
            "status": "ok" if ok else "degraded",
            "role": "ingest",
            "client_id": self.settings.client_id,
            "mqtt_connected": self.consumer.connected.is_set(),
            "storage_ok": self.metrics.storage_ok,
            "pending": self.consumer.pending,
            "published_taps": self.publisher.taps,
            "registry_version": self.registry.version,
            "metrics": self.metrics.as_json(),
        }
