"""The two cloud roles in this process: one ingest worker and one console service.

Each keeps its own MQTT connections through the real broker, exactly as `warmcard ingest` and
`warmcard console` do; the console learns of stored taps only through the stored-taps channel.
Tests drive both through one handle.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from cloud_ingest.pipeline.consumer import Metrics
from cloud_ingest.service import ConsoleService
from cloud_ingest.settings import IngestSettings
from cloud_ingest.worker import IngestWorker
from tests.support.ingest import wait_for
from warmcard.timestamps import now_us

WORKER_PARTS = frozenset({"consumer", "processor", "storage"})


class SettledMetrics:
    """The worker's counters, with `acked` held back until the console has applied every tap
    the worker stored: a test that waits for N acks then reads the console sees them all."""

    def __init__(self, stack: Stack) -> None:
        self._stack = stack

    @property
    def acked(self) -> int:
        worker, console = self._stack.worker, self._stack.console
        caught_up = console.stored_taps >= worker.publisher.taps
        return worker.metrics.acked if caught_up else -1

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stack.worker.metrics, name)


class Stack:
    """`Stack(settings)` owns both; `Stack(settings, console=app.state.service)` adds a worker
    beside a console that a web app's lifespan starts and stops."""

    def __init__(
        self,
        settings: IngestSettings,
        *,
        clock: Callable[[], int] = now_us,
        console: ConsoleService | None = None,
    ) -> None:
        self.worker = IngestWorker(settings, clock=clock)
        self.owns_console = console is None
        self.console = console if console is not None else ConsoleService(settings, clock=clock)
        self.metrics = SettledMetrics(self)

    @property
    def worker_metrics(self) -> Metrics:
        return self.worker.metrics

    def __getattr__(self, name: str) -> Any:
        part = self.worker if name in WORKER_PARTS else self.console
        return getattr(part, name)

    def start(self, *, wait: bool = True) -> Stack:
        if self.owns_console:
            self.console.start()
        self.worker.start()
        if wait:
            wait_for(self.worker.consumer.subscribed.is_set, timeout=15)
            wait_for(self.console.devicelink.subscribed.is_set, timeout=15)
        return self

    def stop(self) -> None:
        self.worker.stop()
        if self.owns_console:
            self.console.stop()

    def close_unstarted(self) -> None:
        """Release what a stack that was never started holds (stop() expects a start)."""
        for closer in (
            self.worker.storage.close,
            self.worker.stores.close,
            self.worker.alerts.store.close,
            self.console.query_storage.close,
            self.console.stores.close,
            self.console.notifier.stop,
        ):
            closer()

    def __enter__(self) -> Stack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
