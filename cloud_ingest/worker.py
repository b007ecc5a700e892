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

import logging
import secrets
from collections.abc import Iterator
from typing import Any

import paho.mqtt.client as mqtt
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from cloud_ingest.alerts.engine import AlertEngine
from cloud_ingest.errors import IngestError
from cloud_ingest.pipeline.conflicts import SeenIndex
from cloud_ingest.pipeline.consumer import BatchProcessor, Consumer, Metrics
from cloud_ingest.pipeline.deadletter import DeadLetterStore
from cloud_ingest.pipeline.influx import InfluxV1, Storage
from cloud_ingest.pipeline.live import Clock
from cloud_ingest.pipeline.provenance import Mismatch, Provenance
from cloud_ingest.pipeline.stored import StoredTap, encode, stored_topic
from cloud_ingest.registry.store import Registry
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


class IngestWorker:
    def __init__(
        self,
        settings: IngestSettings,
        *,
        storage: Storage | None = None,
        clock: Clock = now_us,
        watchdog: Watchdog | None = None,
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.registry = Registry(settings.registry_path, clock=clock)
        self.deadletters = DeadLetterStore(
            settings.deadletter_path,
            keep_bytes=settings.deadletter_keep_bytes,
            device_quota=settings.deadletter_device_quota,
            retention_days=settings.deadletter_retention_days,
            clock=clock,
        )
        self.storage = storage or InfluxV1(settings.influx)
        self.metrics = Metrics()
        self.seen = SeenIndex(settings.seen_index_file, retention_days=settings.seen_retention_days)
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
            console_db_path=settings.console_db,
            db_path=settings.alerts_db_file,
            default_tz=settings.tz,
            clock=clock,
        )
        self.processor.on_suspect.append(self._alert_suspects)
        self.consumer = Consumer(settings, self.processor, clock=clock)
        self.publisher = StoredPublisher(self.consumer.client, settings.client_id)
        self.processor.on_stored.append(self.publisher)
        # systemd (Type=notify): READY once started, pings only while the batcher turns.
        self.watchdog = watchdog or Watchdog.from_environ()
        self.watchdog.register("batcher")
        self.consumer.on_tick = lambda: self.watchdog.beat("batcher")
        self.started = False

    def _alert_suspects(self, found: list[Mismatch]) -> None:
        self.alerts.refresh_site_paths()  # rare: read where the sites sit now
        self.alerts.on_suspect(found)

    def start(self) -> None:
        """Connect; InfluxDB being down at start is survived (the consumer waits and retries)."""
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
        self.registry.close()
        self.deadletters.close()
        self.seen.close()
        self.alerts.store.close()
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


class WorkerCollector(Collector):
    """The worker's counters, read at every scrape."""

    def __init__(self, worker: IngestWorker) -> None:
        self.worker = worker

    def collect(self) -> Iterator[Metric]:
        w = self.worker
        m = w.metrics
        for name, value, text in (
            ("received", m.received, "Event messages received from the broker"),
            ("stored", m.stored, "Tap points InfluxDB accepted"),
            ("acked", m.acked, "Messages acknowledged to the broker"),
            ("batches", m.batches, "Batches handled"),
            ("write_retries", m.write_retries, "InfluxDB writes retried while unavailable"),
        ):
            yield CounterMetricFamily(f"warmcard_ingest_{name}", text, value=value)
        letters = CounterMetricFamily(
            "warmcard_ingest_dead_letters", "Messages dead-lettered, by reason", labels=["reason"]
        )
        for reason, count in sorted(m.dead_letters.items()):
            letters.add_metric([reason], count)
        yield letters
        for name, value, text in (
            ("storage_ok", int(m.storage_ok), "1 while InfluxDB accepts writes"),
            ("mqtt_connected", int(w.consumer.connected.is_set()), "1 while consuming events"),
            ("consumer_pending", w.consumer.pending, "Messages received, not yet handled"),
            ("registry_version", w.registry.version, "Registry version loaded"),
        ):
            yield GaugeMetricFamily(f"warmcard_ingest_{name}", text, value=value)


def _bearer_ok(request: Request, token: str | None) -> bool:
    given = request.headers.get("authorization", "")
    return token is not None and secrets.compare_digest(given, f"Bearer {token}")


def create_health_app(worker: IngestWorker) -> FastAPI:
    """The worker's HTTP face: /healthz (status for anyone, details with the metrics token) and
    /metrics (Prometheus, bearer metrics_token). Its lifespan starts and stops the worker."""
    from contextlib import asynccontextmanager

    import anyio

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> Any:
        await anyio.to_thread.run_sync(worker.start)
        try:
            yield
        finally:
            await anyio.to_thread.run_sync(worker.stop)

    app = FastAPI(
        title="Warmcard ingest worker",
        lifespan=lifespan,
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
    )
    token = worker.settings.metrics_token
    secret = token.get_secret_value() if token is not None else None
    registry = CollectorRegistry()
    registry.register(WorkerCollector(worker))

    @app.get("/healthz")
    def healthz(request: Request) -> JSONResponse:
        health = worker.health()
        code = 200 if health["status"] == "ok" else 503
        if _bearer_ok(request, secret):
            return JSONResponse(health, status_code=code)
        return JSONResponse({"status": health["status"]}, status_code=code)

    @app.get("/metrics")
    def metrics(request: Request) -> Response:
        if secret is None:
            return Response(status_code=404)
        if not _bearer_ok(request, secret):
            return Response(status_code=401, headers={"WWW-Authenticate": "Bearer"})
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return app
