"""Settings of notifications: the `[notify]` table of ingest.toml (targets are set per area in
the console; only the SMTP server and the timings are here)."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator

DEFAULT_RETRY_S = [5.0, 30.0, 120.0, 600.0, 3600.0]


class SmtpSettings(BaseModel):
    """`[notify.smtp]`: the server e-mail goes through; no host, no e-mail (webhooks still go)."""

    model_config = ConfigDict(populate_by_name=True)

    host: str = ""
    port: int = Field(default=587, ge=1, le=65535)
    starttls: bool = True
    user: str = ""
    # The password lives in a file readable by the console's user only, never in the TOML.
    password_file: Path | None = None
    from_address: str = Field(default="", alias="from")
    timeout_s: float = Field(default=20.0, gt=0)

    @field_validator("password_file")
    @classmethod
    def _readable(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_file():
            raise ValueError(f"{value} is not a file (the SMTP password, one line)")
        return value

    def password(self) -> str | None:
        if self.password_file is None:
            return None
        return self.password_file.read_text(encoding="utf-8").strip()


class NotifySettings(BaseModel):
    """How alerts reach the people of an area (docs/alerts.md, "Notifications")."""

    enabled: bool = True
    # The console's address as people reach it, for the link in each message.
    console_url: str = Field(default="", pattern=r"^(https?://[^\s/]+(/[^\s]*)?)?$")
    poll_s: float = Field(default=1.0, gt=0)  # how often new alerts and due retries are looked for
    # Waits before each retry; attempts = 1 + len(retry_s), then the delivery is marked failed.
    retry_s: list[float] = Field(default_factory=lambda: list(DEFAULT_RETRY_S), max_length=20)
    # A console that claimed a delivery and died: another takes it over after this long.
    lease_s: float = Field(default=120.0, gt=0)
    webhook_timeout_s: float = Field(default=10.0, gt=0)
    log_days: float = Field(default=90.0, gt=0)  # the delivery log names e-mail addresses
    smtp: SmtpSettings = Field(default_factory=SmtpSettings)

    @field_validator("retry_s")
    @classmethod
    def _positive(cls, value: list[float]) -> list[float]:
        if any(s <= 0 for s in value):
            raise ValueError("every retry wait must be > 0 seconds, e.g. [5, 30, 120, 600, 3600]")
        return value

    @property
    def max_attempts(self) -> int:
        return 1 + len(self.retry_s)
