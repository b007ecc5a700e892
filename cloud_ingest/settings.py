"""Settings of the cloud ingest service: one object, read from TOML plus WARMCARD_* env."""

from __future__ import annotations

from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, Field, SecretStr, field_validator

from cloud_ingest.alerts.notify.settings import NotifySettings
from cloud_ingest.alerts.settings import AlertSettings
from cloud_ingest.db import Store
from cloud_ingest.ops.backup.settings import BackupSettings
from cloud_ingest.ops.settings import HealSettings
from cloud_ingest.pipeline.settings import PipelineSettings
from warmcard.localtime import DEFAULT_TZ
from warmcard.settings import TomlSettings, reject_placeholder


class ApiSettings(BaseModel):
    """Where `warmcard console` serves the console (put a reverse proxy with TLS in front)."""

    host: str = "127.0.0.1"
    port: int = 8080
    # The reverse proxies (their addresses) whose X-Forwarded-For names the client, for the
    # per-address login limit and the audit log; empty: the peer address is the client.
    forwarded_allow_ips: list[str] = Field(default_factory=list)


class WorkerSettings(BaseModel):
    """Where `warmcard ingest` answers /healthz and /metrics (nothing else)."""

    host: str = "127.0.0.1"
    port: int = 8081


class DatabaseSettings(BaseModel):
    """`[database]`: where the stores live (docs/architecture.md, "One machine or several").

    Without `url`, each store is an SQLite file (`registry_path`, `console_db`, …): one machine.
    With a PostgreSQL URL (`postgresql+psycopg://warmcard@db.example/warmcard`; the password in
    ~/.pgpass or PGPASSWORD rather than here), every store is in that database, shared by the
    workers and consoles of every host.
    """

    url: str | None = Field(default=None, pattern=r"^postgresql\+psycopg://")


class RetentionSettings(BaseModel):
    """How long the console's stores keep what they hold (`[retention]`), in days; applied by
    the console every hour. Taps: `[influx] retention_days`; dead letters:
    `deadletter_retention_days`. docs/operations.md ("Retention") gives each default's reason."""

    card_history_days: float = Field(default=1096.0, gt=0)  # as long as the taps they explain
    alerts_days: float = Field(default=365.0, gt=0)  # closed alerts only
    visits_days: float = Field(default=1096.0, gt=0)  # visits (and their notes)
    # The record of who processed personal data: kept at least three years (PIPL art. 54-56
    # audits look back that far); older rows go behind a checkpoint that keeps verify whole.
    audit_days: float = Field(default=1096.0, gt=0)
    every_s: float = Field(default=3600.0, gt=0)


class IngestSettings(TomlSettings, PipelineSettings):
    """`warmcard ingest --config ingest.toml`; every key may be overridden as WARMCARD_<KEY>.

    Composed from each part's own settings: the pipeline's (mqtt, influx, batching), the
    alert engine's `[alerts]` table, notifications' `[notify]` and self-healing's `[heal]`; each
    part receives only its own.
    """

    registry_path: Path = Path("run/registry.sqlite3")
    deadletter_path: Path = Path("run/deadletter.sqlite3")
    # Conflict detection index (pipeline.conflicts); default: conflicts.sqlite3 beside the dead
    # letters, shared by every worker of the host (one index decides each (device, seq)).
    seen_index_path: Path | None = None
    seen_retention_days: float = Field(default=60.0, gt=0)
    # Dead letters are bounded (a device decides what it sends): a payload prefix, its length and
    # SHA-256; past a device's quota they are only counted; older ones are pruned.
    deadletter_keep_bytes: int = Field(default=4096, ge=256, le=65536)
    deadletter_device_quota: int = Field(default=1000, ge=1)
    deadletter_retention_days: float = Field(default=90.0, gt=0)
    # A tap naming a card's previous holder still matches this long after the card changed
    # hands: a kiosk's roster may lag a reassignment (pipeline.provenance).
    roster_lag_s: float = Field(default=3 * 86400, ge=0)
    api: ApiSettings = Field(default_factory=ApiSettings)
    worker: WorkerSettings = Field(default_factory=WorkerSettings)
    # One per console process: its link connection's client id is `<console_id>-link` (the
    # broker keys sessions by it; with use_username_as_clientid, give each console its user).
    console_id: str = Field(default="console-1", pattern=r"^[a-z0-9][a-z0-9-]{1,50}$")
    tz: str = DEFAULT_TZ
    live_resync_s: float = Field(default=30.0, gt=0)
    # A device whose heartbeat is older than this shows as "stale" on the live page.
    status_stale_s: float = Field(default=300.0, gt=0)
    # The console's users, sessions and area hierarchy (where each site sits); see
    # docs/console-access.md. `warmcard user add --db` must name the same file.
    console_db: Path = Path("run/console.sqlite3")
    # Session cookies only over HTTPS; false only for plain-http development on localhost.
    cookie_secure: bool = True
    alerts: AlertSettings = Field(default_factory=AlertSettings)
    notify: NotifySettings = Field(default_factory=NotifySettings)  # alerts to robots and e-mail
    retention: RetentionSettings = Field(default_factory=RetentionSettings)
    # `warmcard backup` / `restore`: the broker's files and InfluxDB's RPC address.
    backup: BackupSettings = Field(default_factory=BackupSettings)
    heal: HealSettings = Field(default_factory=HealSettings)  # the console's self-healing
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)

    def store(self, name: Store) -> Path | str:
        """Where one store lives: the shared database when `[database] url` is set, else its
        SQLite file."""
        if self.database.url:
            return self.database.url
        files: dict[Store, Path] = {
            "registry": self.registry_path,
            "console": self.console_db,
            "alerts": self.alerts_db_file,
            "deadletters": self.deadletter_path,
            "conflicts": self.seen_index_file,
        }
        return files[name]

    @property
    def alerts_db_file(self) -> Path:
        """The alerts database: `[alerts] db_path`, else alerts.sqlite3 beside the registry."""
        return self.alerts.db_path or self.registry_path.with_name("alerts.sqlite3")

    @property
    def seen_index_file(self) -> Path:
        if self.seen_index_path is not None:
            return self.seen_index_path
        return self.deadletter_path.with_name("conflicts.sqlite3")

    @property
    def legacy_seen_index_file(self) -> Path:
        """Where releases before the shared default kept this worker's own index."""
        return self.deadletter_path.with_name(f"seen-{self.client_id}.sqlite3")

    # Bearer token for /metrics and for /healthz details; None turns /metrics off.
    metrics_token: SecretStr | None = None

    _no_placeholder_token = field_validator("metrics_token")(reject_placeholder)

    @field_validator("metrics_token")
    @classmethod
    def _long_token(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < 16:
            raise ValueError("must be at least 16 characters (e.g. `openssl rand -hex 24`)")
        return value

    @field_validator("tz")
    @classmethod
    def _known_tz(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}, e.g. Asia/Shanghai") from None
        return value
