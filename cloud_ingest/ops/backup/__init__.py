"""`warmcard backup` / `warmcard restore`: every store of the cloud in one verified folder.

A backup folder holds one sub-folder per store and `manifest.json` (written last) with each
file's SHA-256, size, mode and owner. Restore reads the manifest, verifies every file and checks
that nothing it would put in place exists yet, and only then restores, store by store: a backup
that does not verify, or a restore that would overwrite, changes nothing.

The stores and their kinds (`stores.py`): the SQLite files (registry, console, alerts, dead
letters, conflict index) by SQLite's online backup API, or, with `[database] url`, the one
PostgreSQL database that holds them all by `pg_dump`/`pg_restore`; the InfluxDB database by its
portable backup, the broker's files (CA, certificates, secrets, dynamic-security state) as files.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path

from cloud_ingest.errors import BackupError
from cloud_ingest.ops.backup.manifest import Manifest, StoreEntry
from cloud_ingest.ops.backup.settings import BackupSettings
from cloud_ingest.ops.backup.stores import (
    FileSetStore,
    InfluxStore,
    PostgresStore,
    SqliteStore,
    Store,
)
from cloud_ingest.pipeline.settings import InfluxSettings
from warmcard.timestamps import format_ts, now_us

__all__ = [
    "BackupSettings",
    "Manifest",
    "StoreEntry",
    "backup",
    "cloud_stores",
    "restore",
]


def cloud_stores(
    sqlite_files: dict[str, Path],
    influx: InfluxSettings,
    settings: BackupSettings,
    *,
    influx_database: str | None = None,
    database_url: str | None = None,
) -> list[Store]:
    """Every store of one deployment, in the order they are backed up and restored.

    `sqlite_files` names each SQLite store (registry, console, ...); `database_url`, the
    PostgreSQL database that holds them instead; `influx_database` restores the InfluxDB
    database under another name.
    """
    stores: list[Store] = [SqliteStore(name, path) for name, path in sqlite_files.items()]
    if database_url is not None:
        stores.append(PostgresStore("database", database_url, settings.pg_bin))
    stores.append(
        InfluxStore("influxdb", influx, settings.influx_rpc, settings.influxd, influx_database)
    )
    stores.append(FileSetStore("broker", settings.broker_dir))
    stores.append(FileSetStore("dynsec", settings.dynsec_file))
    return stores


def backup(stores: Sequence[Store], out: Path) -> Manifest:
    """Back every store up into `out` (new or empty), then write the manifest."""
    if out.exists() and any(out.iterdir()):
        raise BackupError(f"{out} is not empty: back up into a new folder")
    out.mkdir(parents=True, exist_ok=True)
    os.chmod(out, 0o700)  # it holds the CA key and password hashes
    manifest = Manifest(created_at=format_ts(now_us()))
    for store in stores:
        manifest.stores.append(store.backup(out / store.name, out))
    manifest.write(out)
    return manifest


def restore(
    stores: Sequence[Store], folder: Path, only: Iterable[str] | None = None
) -> list[StoreEntry]:
    """Verify the backup in `folder`, refuse to overwrite anything, then restore the stores.

    `only` limits the restore to the named stores. Returns the entries restored (absent stores,
    which the backup found nothing of, are skipped).
    """
    manifest = Manifest.read(folder)
    manifest.verify(folder)
    wanted = set(only) if only is not None else None
    known = {s.name for s in stores}
    if wanted is not None and wanted - known:
        raise BackupError(f"unknown store(s) {sorted(wanted - known)}; known: {sorted(known)}")
    pairs: list[tuple[Store, StoreEntry]] = []
    for store in stores:
        if wanted is not None and store.name not in wanted:
            continue
        entry = manifest.store(store.name)
        if entry.kind != store.kind:
            raise BackupError(
                f"{store.name}: the backup holds a {entry.kind!r} store, this deployment a "
                f"{store.kind!r} one; restore it with the tool of that kind"
            )
        if not entry.absent:
            pairs.append((store, entry))
    blockers = [b for store, entry in pairs if (b := store.blocker(entry)) is not None]
    if blockers:
        raise BackupError(
            "恢复会覆盖现有数据 restoring would overwrite; stop the services and move these "
            "aside first (nothing was restored):\n" + "\n".join(blockers)
        )
    for store, entry in pairs:
        store.restore(entry, folder)
    return [entry for _, entry in pairs]
