"""The Prometheus collectors of /metrics, read at scrape time: the console's (live state, alerts,
the device link) and an ingest worker's (its counters, on the worker's own port)."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from cloud_ingest.alerts.models import Kind
from cloud_ingest.registry import areas
from cloud_ingest.service import ConsoleService
from cloud_ingest.worker import IngestWorker


class ConsoleCollector(Collector):
    """Reads the service's counters at every scrape (no second bookkeeping)."""

    def __init__(self, service: ConsoleService) -> None:
        self.service = service

    def collect(self) -> Iterator[Metric]:
        svc = self.service
        for name, value, text in (
            ("link_connected", int(svc.devicelink.connected.is_set()), "1 while linked to devices"),
            ("registry_version", svc.registry.version, "Registry version loaded"),
        ):
            yield GaugeMetricFamily(f"warmcard_console_{name}", text, value=value)
        yield CounterMetricFamily(
            "warmcard_console_stored_taps",
            "Stored taps received from the ingest workers",
            value=svc.stored_taps,
        )
        snapshot = svc.live.snapshot()
        sites = snapshot["sites"]
        yield GaugeMetricFamily("warmcard_live_sites", "Sites in live state", value=len(sites))
        for name, key, text in (
            ("present", "present", "People present now, all sites"),
            ("arrivals", "arrivals", "People checked in today, all sites"),
            ("meals", "meals_total", "Meals served today, all sites"),
            ("unknown_cards", "unknown_cards", "Unknown cards tapped today, all sites"),
        ):
            total = sum(int(s[key]) for s in sites)
            yield GaugeMetricFamily(f"warmcard_live_{name}", text, value=total)
        states = GaugeMetricFamily(
            "warmcard_live_devices", "Devices by last known state", labels=["state"]
        )
        counts: dict[str, int] = {}
        for site in sites:
            for device in site["devices"]:
                counts[device["state"]] = counts.get(device["state"], 0) + 1
        for state, n in sorted(counts.items()):
            states.add_metric([state], n)
        yield states
        yield from self._alerts()

    def _alerts(self) -> Iterator[Metric]:
        engine = self.service.alerts
        by_kind = engine.store.counts([areas.ROOT])
        open_alerts = GaugeMetricFamily(
            "warmcard_alerts_open",
            "Alerts not closed (open or acknowledged), by kind",
            labels=["kind"],
        )
        for kind in Kind:  # every kind, zeros included: a series that vanishes cannot alarm
            open_alerts.add_metric([kind.value], by_kind.get(kind.value, 0))
        yield open_alerts
        yield CounterMetricFamily(
            "warmcard_alerts_hook_errors",
            "Batches the alerts hook failed on (taps still stored)",
            value=engine.hook_errors,
        )


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
