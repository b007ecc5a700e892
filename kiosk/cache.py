"""The local copy of roster and config in the data dir: it survives restarts and offline days.

Both files are sealed (AES-256-GCM, kiosk.sealed): the roster holds the site's names and card
UIDs, and an SD card can be carried off. A clear-text file from before sealing is read once and
written back sealed.
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel

from kiosk import sealed
from kiosk.policy.roster import RosterIndex
from warmcard.contract import MAX_ROSTER_BYTES, DeviceConfig, Roster, RosterEntry, parse_model
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

    def __init__(self, data_dir: Path | str, key_file: Path | None = None) -> None:
        self.data_dir = Path(data_dir)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._key = sealed.load_key(self.data_dir, key_file)
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

    def _load(self, model: type[M], path: Path) -> M | None:
        try:
            data = path.read_bytes()
            clear = not sealed.is_sealed(data)
            if not clear:
                data = sealed.unseal(self._key, path.name, data)
            value = parse_model(model, data, limit=MAX_ROSTER_BYTES)
        except FileNotFoundError:
            return None
        except (OSError, InvalidPayload, sealed.Unsealable) as exc:
            # A damaged cache (or one sealed with a replaced key) is not fatal: the cloud's
            # retained copy replaces it on connect.
            log.warning("ignoring unreadable cache %s: %s", path, exc)
            return None
        if clear:  # written before sealing existed: seal it now
            self._write(path, data)
        return value

    def _write(self, path: Path, plain: bytes) -> None:
        _atomic_write(path, sealed.seal(self._key, path.name, plain))

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
            self._write(self.roster_path, roster.to_bytes())
            self._roster = roster
            self._index = RosterIndex(roster)
        log.info("roster version %s: %d cards", roster.version, len(roster.entries))
        return True

    def update_config(self, config: DeviceConfig) -> bool:
        """Store a new config; returns whether it differs from the one held."""
        with self._lock:
            if self._config == config:
                return False
            self._write(self.config_path, config.to_bytes())
            self._config = config
        log.info("config: site %s, mode %s", config.site_id, config.mode.value)
        return True
