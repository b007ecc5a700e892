"""The local copy of roster and config in the data dir: it survives restarts and offline days."""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel

from kiosk.policy.roster import RosterIndex
from warmcard.contract import DeviceConfig, Roster, RosterEntry, parse_model
from warmcard.rejections import InvalidPayload

log = logging.getLogger("warmcard.kiosk.roster")

M = TypeVar("M", bound=BaseModel)


def _atomic_write(path: Path, data: bytes) -> None:
    """Write-then-rename with fsyncs: after a power cut the file is the old or the new, whole."""
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


class LocalCache:
    """card_uid -> person, plus the last DeviceConfig; both survive restarts."""

    def __init__(self, data_dir: Path | str) -> None:
        self.data_dir = Path(data_dir)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._roster: Roster | None = self._load(Roster, self.roster_path)
        self._config: DeviceConfig | None = self._load(DeviceConfig, self.config_path)
        self._index = RosterIndex(self._roster)

    @property
    def roster_path(self) -> Path:
        return self.data_dir / "roster.json"

    @property
    def config_path(self) -> Path:
        return self.data_dir / "config.json"

    @staticmethod
    def _load(model: type[M], path: Path) -> M | None:
        try:
            return parse_model(model, path.read_bytes())
        except FileNotFoundError:
            return None
        except (OSError, InvalidPayload) as exc:
            # A damaged cache is not fatal: the cloud's retained copy replaces it on connect.
            log.warning("ignoring unreadable cache %s: %s", path, exc)
            return None

    @property
    def roster(self) -> Roster | None:
        return self._roster

    @property
    def config(self) -> DeviceConfig | None:
        return self._config

    def lookup(self, card_uid: str) -> RosterEntry | None:
        return self._index.lookup(card_uid)

    def update_roster(self, roster: Roster) -> bool:
        """Replace the roster if its version or content changed; returns whether it did."""
        with self._lock:
            if self._roster == roster:
                return False
            _atomic_write(self.roster_path, roster.to_bytes())
            self._roster = roster
            self._index = RosterIndex(roster)
        log.info("roster version %s: %d cards", roster.version, len(roster.entries))
        return True

    def update_config(self, config: DeviceConfig) -> bool:
        """Store a new config; returns whether it differs from the one held."""
        with self._lock:
            if self._config == config:
                return False
            _atomic_write(self.config_path, config.to_bytes())
            self._config = config
        log.info("config: site %s, mode %s", config.site_id, config.mode.value)
        return True
