"""What every cloud process (an ingest worker, a console) holds: its settings and clock, the
shared stores opened from ingest.toml, and its systemd watchdog.

Workers write the dead letters and the conflict index; consoles read them for the operator's
pages (and both read the registry), so each process opens the same files the same way.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass

from cloud_ingest.pipeline.conflicts import SeenIndex
from cloud_ingest.pipeline.deadletter import DeadLetterStore
from cloud_ingest.registry.store import Registry
from cloud_ingest.settings import IngestSettings
from warmcard.watchdog import Watchdog

log = logging.getLogger(__name__)


def adopt_legacy_seen_index(settings: IngestSettings) -> bool:
    """A worker of an earlier release kept its conflict index in its own file
    (`seen-<client_id>.sqlite3`); the host's shared default (`conflicts.sqlite3`) takes it over
    when there is none yet, so the history it holds goes on deciding conflicts. True if moved."""
    if settings.database.url or settings.seen_index_path is not None:
        return False
    old, new = settings.legacy_seen_index_file, settings.seen_index_file
    if not old.exists() or new.exists():
        return False
    for suffix in ("-wal", "-shm", ""):  # the database file last: it is what the check looks at
        part = old.with_name(old.name + suffix)
        if part.exists():
            os.replace(part, new.with_name(new.name + suffix))
    log.info("conflict index %s is now the host's shared %s", old, new)
    return True


@dataclass
class SharedStores:
    registry: Registry
    deadletters: DeadLetterStore
    seen: SeenIndex

    @classmethod
    def open(cls, settings: IngestSettings, clock: Callable[[], int]) -> SharedStores:
        adopt_legacy_seen_index(settings)
        return cls(
            Registry(settings.store("registry"), clock=clock),
            DeadLetterStore(
                settings.store("deadletters"),
                keep_bytes=settings.deadletter_keep_bytes,
                device_quota=settings.deadletter_device_quota,
                retention_days=settings.deadletter_retention_days,
                clock=clock,
            ),
            SeenIndex(settings.store("conflicts"), retention_days=settings.seen_retention_days),
        )

    def close(self) -> None:
        self.registry.close()
        self.deadletters.close()
        self.seen.close()


class CloudProcess:
    """The base of IngestWorker and ConsoleService; `loop` names the loop the watchdog watches
    (systemd restarts the process when it stops turning)."""

    def __init__(
        self,
        settings: IngestSettings,
        clock: Callable[[], int],
        watchdog: Watchdog | None,
        loop: str,
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.stores = SharedStores.open(settings, clock)
        self.registry = self.stores.registry
        self.deadletters = self.stores.deadletters
        self.seen = self.stores.seen
        self.watchdog = watchdog or Watchdog.from_environ()
        self.watchdog.register(loop)
