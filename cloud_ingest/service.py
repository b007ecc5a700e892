"""The ingest service: wires registry, storage, dead letters, live state and the MQTT clients.

In-process use (tests, demo):

    service = IngestService(IngestSettings.load("ingest.toml"))
    service.start()      # returns at once; connects and consumes in background threads
    ...
    service.stop()

The FastAPI app (cloud_ingest.web.app.create_app) owns one in its lifespan.
"""

from __future__ import annotations

import logging
import threading

from cloud_ingest.alerts.engine import AlertEngine
from cloud_ingest.console.enrolment import EnrolMode
from cloud_ingest.errors import IngestError
from cloud_ingest.pipeline.conflicts import SeenIndex
from cloud_ingest.pipeline.consumer import BatchProcessor, Consumer, Metrics
from cloud_ingest.pipeline.deadletter import DeadLetterStore
from cloud_ingest.pipeline.devicelink import DeviceLink
from cloud_ingest.pipeline.downlink import Downlink
from cloud_ingest.pipeline.influx import InfluxV1, Storage
from cloud_ingest.pipeline.live import Clock, LiveState
from cloud_ingest.pipeline.provenance import Provenance
from cloud_ingest.registry.store import Registry
from cloud_ingest.settings import IngestSettings
from warmcard.timestamps import now_us

log = logging.getLogger(__name__)


class IngestService:
    def __init__(
        self,
        settings: IngestSettings,
        *,
        storage: Storage | None = None,
        query_storage: Storage | None = None,
        clock: Clock = now_us,
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
        # Separate HTTP clients: the writer never waits behind a slow resync query.
        self.storage = storage or InfluxV1(settings.influx)
        self.query_storage = query_storage or InfluxV1(settings.influx)
        self.metrics = Metrics()
        self.seen = SeenIndex(settings.seen_index_file, retention_days=settings.seen_retention_days)
        self.live = LiveState(
            self.registry,
            self.query_storage,
            default_tz=settings.tz,
            clock=clock,
            stale_s=settings.status_stale_s,
        )
        self.processor = BatchProcessor(
            self.storage,
            self.deadletters,
            self.registry,
            self.live,
            self.metrics,
            clock=clock,
            seen=self.seen,
            provenance=Provenance(self.registry, roster_lag_s=settings.roster_lag_s),
        )
        self.alerts = AlertEngine(
            settings.alerts,
            self.registry,
            self.live,
            self.query_storage,
            console_db_path=settings.console_db,
            db_path=settings.alerts_db_file,
            default_tz=settings.tz,
            clock=clock,
        )
        self.processor.on_stored.append(lambda live, _good: self.alerts.on_stored(live))
        self.processor.on_suspect.append(self.alerts.on_suspect)
        self.enrol = EnrolMode(self.registry)
        self.processor.on_stored.append(self.enrol.observe)
        self.consumer = Consumer(settings, self.processor, clock=clock)
        self.devicelink = DeviceLink(settings, self.live, on_connect=self._publish_downlink)
        self.downlink = Downlink(self.registry, self.devicelink)
        self._downlink_version = self.registry.version  # on connect everything is published
        self._stop = threading.Event()
        self._sync_thread: threading.Thread | None = None
        self.started = False

    def _publish_downlink(self) -> None:
        self.downlink.publish_all()

    def start(self) -> None:
        """Connect everything; InfluxDB being down at start is survived (the consumer waits)."""
        try:
            self.storage.ensure_database()
            self.live.rebuild()
        except IngestError as exc:
            log.warning("live state not rebuilt at start (%s); will retry", exc)
        self._stop.clear()
        self.consumer.start()
        self.devicelink.start()
        self.alerts.start()
        self._sync_thread = threading.Thread(
            target=self._sync_loop, name="ingest-sync", daemon=True
        )
        self._sync_thread.start()
        self.started = True

    def _sync_loop(self) -> None:
        """Watch the registry (imports from any process) and resync live state from InfluxDB."""
        elapsed = 0.0
        next_resync = self.settings.live_resync_s if self.live.last_sync_us else 0.0
        while not self._stop.wait(1.0):
            elapsed += 1.0
            try:
                # Compare with the version last published, not refresh()'s answer: a console
                # edit in this process has already refreshed the shared registry cache.
                self.registry.refresh()
                if self.registry.version != self._downlink_version:
                    self._downlink_version = self.registry.version
                    log.info("registry changed (version %d)", self.registry.version)
                    if self.devicelink.connected.is_set():
                        self.downlink.publish_all(changed_only=True)
                    next_resync = 0.0
                if elapsed >= next_resync:
                    self.live.rebuild()
                    next_resync = elapsed + self.settings.live_resync_s
            except IngestError as exc:
                log.warning("live resync failed: %s", exc)
            except Exception:
                log.exception("sync loop error")

    def stop(self) -> None:
        self._stop.set()
        self.consumer.stop()
        self.devicelink.stop()
        self.alerts.stop()
        if self._sync_thread is not None:
            self._sync_thread.join(5)
        self.storage.close()
        self.query_storage.close()
        self.registry.close()
        self.deadletters.close()
        self.seen.close()
        self.started = False

    def health(self) -> dict[str, object]:
        ok = self.consumer.connected.is_set() and self.metrics.storage_ok
        return {
            "status": "ok" if ok else "degraded",
            "mqtt_connected": self.consumer.connected.is_set(),
            "status_link_connected": self.devicelink.connected.is_set(),
            "storage_ok": self.metrics.storage_ok,
            "pending": self.consumer.pending,
            "registry_version": self.registry.version,
            "metrics": self.metrics.as_json(),
        }
