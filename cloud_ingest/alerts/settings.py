"""Settings of the alert engine: the `[alerts]` table of ingest.toml."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field, field_validator

from cloud_ingest.errors import AreaError
from cloud_ingest.registry.areas import parse_path

DEFAULT_VISIT_DUE_DAYS = {"lives_alone": 2.0, "child_in_difficulty": 3.0}


class AlertSettings(BaseModel):
    """Thresholds of every alert rule; times in seconds unless the name says otherwise."""

    db_path: Path | None = None  # default: alerts.sqlite3 beside the registry
    evaluate_s: float = Field(default=15.0, gt=0)  # device health and visit-due period

    # Device health.
    heartbeat_alarm_s: float = Field(default=300.0, gt=0)  # no heartbeat for this long
    offline_alarm_s: float = Field(default=60.0, ge=0)  # last-will "offline" lasting this long
    outbox_growth_heartbeats: int = Field(default=5, ge=2)  # strictly rising over N heartbeats
    outbox_alarm_depth: int = Field(default=200, ge=1)  # ... or at least this deep
    outbox_alarm_s: float = Field(default=600.0, ge=0)  # ... for this long
    # A kiosk's broker-acknowledged taps (heartbeat last_seq, outbox empty) not stored this long.
    unstored_alarm_s: float = Field(default=300.0, ge=0)

    # Well-being: days without a check-in or meal before a visit is due, per flag, and
    # overrides per area path (the most specific area wins).
    visit_due_days: dict[str, float] = Field(default_factory=lambda: dict(DEFAULT_VISIT_DUE_DAYS))
    visit_due_days_by_area: dict[str, dict[str, float]] = Field(default_factory=dict)
    last_seen_rebuild_days: float = Field(default=14.0, gt=0)

    # Anti-fraud.
    two_sites_minutes: float = Field(default=30.0, ge=0)  # same person at two sites
    hours_grace_minutes: float = Field(default=15.0, ge=0)  # tolerance around opening hours
    burst_taps: int = Field(default=20, ge=1)  # more than this many taps ...
    burst_seconds: float = Field(default=30.0, gt=0)  # ... within this window at one kiosk

    @field_validator("visit_due_days")
    @classmethod
    def _positive_days(cls, value: dict[str, float]) -> dict[str, float]:
        for flag, days in value.items():
            if days <= 0:
                raise ValueError(f"visit_due_days.{flag} must be > 0 days, got {days}")
        return value

    @field_validator("visit_due_days_by_area")
    @classmethod
    def _area_paths(cls, value: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
        normalised: dict[str, dict[str, float]] = {}
        for area, flags in value.items():
            try:
                path = parse_path(area)
            except AreaError as exc:
                raise ValueError(str(exc)) from None
            for flag, days in flags.items():
                if days <= 0:
                    raise ValueError(f"visit_due_days_by_area.{area}.{flag} must be > 0 days")
            normalised[path] = dict(flags)
        return normalised

    @property
    def flags(self) -> frozenset[str]:
        """Every flag a person may carry: those with a visit-due threshold."""
        return frozenset(self.visit_due_days)
