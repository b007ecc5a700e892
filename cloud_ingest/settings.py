"""Settings of the cloud ingest service: one object, read from TOML plus WARMCARD_* env."""

from __future__ import annotations

from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, Field, SecretStr, field_validator

from warmcard.settings import MqttSettings, TomlSettings, reject_placeholder


class InfluxSettings(BaseModel):
    """InfluxDB reached through the v1 HTTP API (/write, /query)."""

    url: str = "http://127.0.0.1:8086"
    database: str = "warmcard"
    username: str | None = None
    password: SecretStr | None = None
    timeout_s: float = 10.0

    _no_placeholder = field_validator("password")(reject_placeholder)


class ApiSettings(BaseModel):
    host: str = "127.0.0.1"
    port: int = 8080


class IngestSettings(TomlSettings):
    """`warmcard ingest --config ingest.toml`; every key may be overridden as WARMCARD_<KEY>."""

    mqtt: MqttSettings = Field(default_factory=MqttSettings)
    # Fixed per worker: the broker keys the persistent session (queued messages) by it.
    client_id: str = "ingest-1"
    share_group: str = "ingest"
    session_expiry_s: int = Field(default=7 * 24 * 3600, ge=0)
    # Unacked messages the broker may have in flight to us; must exceed batch_max to batch well.
    receive_maximum: int = Field(default=20000, ge=1, le=65535)
    influx: InfluxSettings = Field(default_factory=InfluxSettings)
    registry_path: Path = Path("run/registry.sqlite3")
    deadletter_path: Path = Path("run/deadletter.sqlite3")
    batch_max: int = Field(default=5000, ge=1)
    batch_ms: int = Field(default=200, ge=1)
    api: ApiSettings = Field(default_factory=ApiSettings)
    tz: str = "Asia/Shanghai"
    live_resync_s: float = Field(default=30.0, gt=0)
    # A device whose heartbeat is older than this shows as "stale" on the live page.
    status_stale_s: float = Field(default=300.0, gt=0)
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
