"""What the alert engine and its store deal in: alert kinds and states, findings, alerts,
last sightings and recorded visits."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from cloud_ingest import i18n


class State(StrEnum):
    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    CLOSED = "closed"


class Kind(StrEnum):
    """Every alert kind; the value is what the `kind` column stores."""

    DEVICE_OFFLINE = "device_offline"
    OUTBOX_GROWING = "outbox_growing"
    READER_FAULT = "reader_fault"
    VISIT_DUE = "visit_due"
    TWO_SITES = "two_sites"
    MEAL_REPEAT = "meal_repeat"
    MEAL_TWO_CANTEENS = "meal_two_canteens"
    OUTSIDE_HOURS = "outside_hours"
    TAP_BURST = "tap_burst"
    TAP_MISMATCH = "tap_mismatch"
    EVENTS_UNSTORED = "events_unstored"
    GAP_UNHEALED = "gap_unhealed"
    SEQ_CONFLICT = "seq_conflict"


KIND_NAMES: dict[Kind, tuple[str, str]] = {
    Kind.DEVICE_OFFLINE: ("设备离线", "Kiosk offline"),
    Kind.OUTBOX_GROWING: ("待发数据积压", "Outbox growing"),
    Kind.READER_FAULT: ("读卡器故障", "Reader fault"),
    Kind.VISIT_DUE: ("需探访", "Visit due"),
    Kind.TWO_SITES: ("同卡两地", "Same card at two sites"),
    Kind.MEAL_REPEAT: ("重复用餐", "Repeat meal"),
    Kind.MEAL_TWO_CANTEENS: ("两处用餐", "Meals at two canteens"),
    Kind.OUTSIDE_HOURS: ("非开放时间刷卡", "Taps outside opening hours"),
    Kind.TAP_BURST: ("短时大量刷卡", "Burst of taps"),
    Kind.TAP_MISMATCH: (
        "刷卡与登记不符（未计数）",
        "Tap does not match the registry (not counted)",
    ),
    Kind.EVENTS_UNSTORED: ("已送达未入库", "Delivered taps not stored"),
    Kind.GAP_UNHEALED: ("缺失刷卡未能自动补回", "Missing taps not healed"),
    Kind.SEQ_CONFLICT: ("同一序号内容不同", "Two taps under one seq"),
}
DEVICE_KINDS = frozenset(
    {Kind.DEVICE_OFFLINE, Kind.OUTBOX_GROWING, Kind.READER_FAULT, Kind.EVENTS_UNSTORED}
)
# Raised by self-healing (cloud_ingest.ops.heal): what reconciling could not put right by itself.
DATA_KINDS = frozenset({Kind.GAP_UNHEALED, Kind.SEQ_CONFLICT})
FRAUD_KINDS = frozenset(
    {
        Kind.TWO_SITES,
        Kind.MEAL_REPEAT,
        Kind.MEAL_TWO_CANTEENS,
        Kind.OUTSIDE_HOURS,
        Kind.TAP_BURST,
        Kind.TAP_MISMATCH,
    }
)


@dataclass(frozen=True)
class Finding:
    """A rule's verdict that an alert should be open; raising it twice updates one alert."""

    kind: Kind
    subject: str
    at_us: int
    detail_zh: str
    detail_en: str
    site_id: str | None = None
    device_id: str | None = None
    person_id: str | None = None


@dataclass(frozen=True)
class Alert:
    id: int
    kind: Kind
    subject: str
    site_id: str | None
    device_id: str | None
    person_id: str | None
    area_path: str
    opened_at: int
    last_seen_at: int
    count: int
    state: State
    acked_at: int | None
    acked_by: str | None
    cleared_at: int | None
    cleared_by: str | None
    closed_by: str | None
    detail_zh: str
    detail_en: str

    def as_json(self, tz: str | None = None) -> dict[str, Any]:
        """The alert for the API: times in wire µs, each with its `*_local` twin in `tz` (the
        site's zone) as people read it."""
        zh, en = KIND_NAMES[self.kind]
        times: dict[str, int | None] = {
            "opened_at": self.opened_at,
            "last_seen_at": self.last_seen_at,
        }
        times |= {"acked_at": self.acked_at, "cleared_at": self.cleared_at}
        local = {f"{k}_local": i18n.format_ts(v, tz) if v else None for k, v in times.items()}
        return local | {
            "id": self.id,
            "kind": self.kind.value,
            "kind_name": f"{zh} {en}",
            "subject": self.subject,
            "site_id": self.site_id,
            "device_id": self.device_id,
            "person_id": self.person_id,
            "area_path": self.area_path,
            "opened_at": self.opened_at,
            "last_seen_at": self.last_seen_at,
            "count": self.count,
            "state": self.state.value,
            "acked_at": self.acked_at,
            "acked_by": self.acked_by,
            "cleared_at": self.cleared_at,
            "cleared_by": self.cleared_by,
            "closed_by": self.closed_by,
            "detail": f"{self.detail_zh} {self.detail_en}",
            "detail_zh": self.detail_zh,
            "detail_en": self.detail_en,
        }


@dataclass(frozen=True)
class LastSeen:
    person_id: str
    ts_us: int
    site_id: str
    device_id: str
    kind: str


@dataclass(frozen=True)
class Visit:
    id: int
    person_id: str
    area_path: str
    visited_at: int
    recorded_by: str
    note: str
    alert_id: int | None
