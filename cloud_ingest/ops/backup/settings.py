"""Settings of `warmcard backup` / `warmcard restore`: the `[backup]` table of ingest.toml."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel

# Where `warmcard provision` keeps the broker's files (docs/broker.md).
DEFAULT_BROKER_DIR = Path("/etc/mosquitto/warmcard")
DEFAULT_DYNSEC_FILE = Path("/var/lib/mosquitto/dynamic-security.json")


class BackupSettings(BaseModel):
    """What a backup reaches beyond the stores ingest.toml already names."""

    # The CA, server and device certificates, the plugin admin's secret, the roles, the share
    # group: a folder copied whole with its modes. Absent on a host without the broker.
    broker_dir: Path = DEFAULT_BROKER_DIR
    # The dynamic-security plugin's state (every device and service user and its role).
    dynsec_file: Path = DEFAULT_DYNSEC_FILE
    # InfluxDB's RPC bind address (influxdb.conf `bind-address`): where `influxd backup` and
    # `influxd restore` connect. Not the HTTP API's port.
    influx_rpc: str = "127.0.0.1:8088"
    influxd: str = "influxd"
    # Where pg_dump and pg_restore are (with `[database] url`); default: PATH, else the newest
    # /usr/lib/postgresql/*/bin. They must be at least the server's major version.
    pg_bin: Path | None = None
