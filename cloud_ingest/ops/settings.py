"""Settings of self-healing: the `[heal]` table of ingest.toml (cloud_ingest.ops.heal)."""

from __future__ import annotations

from pydantic import BaseModel, Field


class HealSettings(BaseModel):
    """How often the console reconciles the recent days by itself and asks kiosks to re-send."""

    enabled: bool = True
    every_s: float = Field(default=300.0, gt=0)  # one round per this many seconds
    days: int = Field(default=3, ge=1, le=62)  # local days checked: today and the days before
    # A missing range is asked for only once it has been open this long, and asked for again
    # no sooner than this after the last request (what is in transit gets time to arrive).
    grace_s: float = Field(default=120.0, ge=0)
    # After this many requests without the gap shrinking, a `gap_unhealed` alert is raised and
    # the device is not asked again until the gap moves (or an operator resends by hand).
    max_requests: int = Field(default=3, ge=1)
    max_resend_per_round: int = Field(default=10_000, ge=1)  # seqs asked for per round, in all
    # One console heals per round: a lease in the alerts database, held this long (default:
    # twice every_s) and renewed by its holder each round; another console takes it over once
    # it has expired.
    lease_s: float | None = Field(default=None, gt=0)

    @property
    def lease_us(self) -> int:
        return int((self.lease_s or 2 * self.every_s) * 1_000_000)
