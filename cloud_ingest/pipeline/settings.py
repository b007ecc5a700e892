"""Settings of the ingest pipeline: the broker connections, InfluxDB, batching and sessions."""

from __future__ import annotations

from pydantic import BaseModel, Field, SecretStr, field_validator, model_validator

from warmcard.settings import MqttSettings, reject_placeholder


class InfluxSettings(BaseModel):
    """InfluxDB reached through the v1 HTTP API (/write, /query)."""

    url: str = "http://127.0.0.1:8086"
    database: str = "warmcard"
    username: str | None = None
    password: SecretStr | None = None
    timeout_s: float = 10.0
    # The taps' retention policy, made the database's default (so every write and query uses
    # it) by `warmcard ingest` at start; shards older than `retention_days` are dropped by
    # InfluxDB. 1,096 days (3 years): subsidy claims are audited up to three years back
    # (docs/operations.md, "Retention"). 0 keeps taps forever.
    retention_policy: str = Field(default="warmcard_taps", pattern=r"^[A-Za-z0-9_]{1,64}$")
    retention_days: int = Field(default=1096, ge=0)

    _no_placeholder = field_validator("password")(reject_placeholder)


class PipelineSettings(BaseModel):
    """What the consumer, device link and storage need; the top-level keys of ingest.toml."""

    mqtt: MqttSettings = Field(default_factory=MqttSettings)
    # The second connection (device status in, config/roster out). Under another username:
    # with `use_username_as_clientid` (deploy/mosquitto) a second connection under the
    # consumer's username would take over, and wipe, the consumer's persistent session.
    link_mqtt: MqttSettings | None = None
    # Fixed per worker: the broker keys the persistent session (queued messages) by it.
    client_id: str = "ingest-1"
    # Workers in one group share the events ($share/<group>/...). On a broker with users the
    # group must not be guessable: `warmcard provision ingest-N --service` prints the one
    # `--ca-init` made (docs/broker.md). The broker refuses devices any $share anyway.
    share_group: str = Field(default="ingest", pattern=r"^[A-Za-z0-9_-]{1,64}$")
    session_expiry_s: int = Field(default=7 * 24 * 3600, ge=0)
    # Unacked messages the broker may have in flight to us; must exceed batch_max to batch well.
    receive_maximum: int = Field(default=20000, ge=1, le=65535)
    influx: InfluxSettings = Field(default_factory=InfluxSettings)
    batch_max: int = Field(default=5000, ge=1)
    batch_ms: int = Field(default=200, ge=1)

    @model_validator(mode="after")
    def _separate_link_user(self) -> PipelineSettings:
        if self.mqtt.username and (
            self.link_mqtt is None or self.link_mqtt.username == self.mqtt.username
        ):
            raise ValueError(
                "link_mqtt needs its own username (e.g. 'downlink') when mqtt.username is set: "
                "a second connection under the consumer's username takes over its session"
            )
        return self

    @model_validator(mode="after")
    def _unguessable_share_group(self) -> PipelineSettings:
        if self.mqtt.username and len(self.share_group) < 16:
            raise ValueError(
                f"共享组名太短 share_group {self.share_group!r} is guessable: use the one that "
                "`warmcard provision ingest-1 --service` prints (at least 16 characters)"
            )
        return self

    @property
    def link(self) -> MqttSettings:
        """Where the status and downlink connection goes."""
        return self.link_mqtt or self.mqtt
