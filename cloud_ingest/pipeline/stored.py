"""The stored-taps channel: each ingest worker tells every console what InfluxDB accepted.

Ingest workers share the event stream (MQTT 5 shared subscription), so each sees only part of
it; the live state, the alert rules and enrol mode must see every tap. After a batch is stored,
and before it is acknowledged, its worker publishes the stored taps on
``warmcard/internal/v1/stored/<worker>`` (QoS 1, never retained, on the worker's own
connection), and every console subscribes to ``warmcard/internal/v1/stored/+`` without sharing.
A console that missed messages (restarted, disconnected) still converges: it rebuilds today from
InfluxDB at start and every ``live_resync_s``.

Only services may use the topic (deploy/mosquitto/dynsec-roles.json: the ingest role writes,
the downlink role reads); devices can neither publish nor read it. The payload carries ids,
never names: ``{"v": 1, "taps": [[site_id, device_id, seq, ts_us, kind, meal_period,
person_id, event_id, card_uid], ...]}``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from json.encoder import encode_basestring_ascii as _quote  # json's own string quoting, in C
from typing import Any

from cloud_ingest.pipeline.live import LiveEvent
from warmcard.contract import MEAL_KINDS, Kind, MealPeriod
from warmcard.ids import DEVICE_ID_RE, EVENT_CARD_RE, EVENT_ID_RE, PERSON_ID_RE, SITE_ID_RE
from warmcard.rejections import InvalidPayload, Reason

STORED_ROOT = "warmcard/internal/v1/stored"
STORED_FILTER = f"{STORED_ROOT}/+"
VERSION = 1
# A message the broker refuses as too large would be resent at every reconnect and cut the
# worker's connection each time: every message stays under this, well below the smallest
# max_packet_size a Warmcard broker has (64 KiB, warmcard/command/servers/mosquitto.conf).
MAX_MESSAGE_BYTES = 32 * 1024


def stored_topic(worker: str) -> str:
    """The topic one worker publishes on (its MQTT client id)."""
    if not DEVICE_ID_RE.fullmatch(worker):
        raise ValueError(f"worker id {worker!r} is not a-z, 0-9 and '-' (2-63 characters)")
    return f"{STORED_ROOT}/{worker}"


@dataclass(frozen=True, slots=True)
class StoredTap:
    """One tap InfluxDB accepted: its site (stamped by ingest), what live state keeps, and the
    event id and card for enrol mode."""

    site_id: str
    event: LiveEvent
    event_id: str
    card_uid: str

    @property
    def live(self) -> tuple[str, LiveEvent]:
        return self.site_id, self.event


def _row(t: StoredTap) -> str:
    """One tap's JSON array, the bytes json.dumps(separators=(",", ":")) writes: its string
    quoting (json's own, in C), without an encoder object per tap."""
    e = t.event
    period = _quote(e.meal_period.value) if e.meal_period else "null"
    person = _quote(e.person_id) if e.person_id is not None else "null"
    return (
        f"[{_quote(t.site_id)},{_quote(e.device_id)},{e.seq},{e.ts_us},"
        f"{_quote(e.kind.value)},{period},{person},{_quote(t.event_id)},{_quote(t.card_uid)}]"
    )


def encode(taps: Sequence[StoredTap]) -> list[bytes]:
    """The payloads for `taps`, each under MAX_MESSAGE_BYTES (about 180 taps)."""
    out: list[bytes] = []
    rows: list[str] = []
    size = 0
    for t in taps:
        row = _row(t)
        if rows and size + len(row) + 32 > MAX_MESSAGE_BYTES:
            out.append(_message(rows))
            rows, size = [], 0
        rows.append(row)
        size += len(row) + 1
    if rows:
        out.append(_message(rows))
    return out


def _message(rows: list[str]) -> bytes:
    return f'{{"v":{VERSION},"taps":[{",".join(rows)}]}}'.encode()


def decode(payload: bytes) -> list[StoredTap]:
    """The taps of one message; InvalidPayload (reason `schema`) for anything malformed."""
    try:
        doc = json.loads(payload)
        if not isinstance(doc, dict) or doc.get("v") != VERSION:
            raise ValueError(f"not a v{VERSION} stored-taps message")
        return [_tap(row) for row in doc["taps"]]
    except (ValueError, KeyError, TypeError) as exc:
        raise InvalidPayload(Reason.SCHEMA, f"stored taps: {exc}") from None


def _tap(row: Any) -> StoredTap:
    site, device, seq, ts_us, kind, period, person, event_id, card = row
    checks = (
        (SITE_ID_RE, site),
        (DEVICE_ID_RE, device),
        (EVENT_ID_RE, event_id),
        (EVENT_CARD_RE, card),
    )
    for pattern, value in checks:
        if not isinstance(value, str) or not pattern.fullmatch(value):
            raise ValueError(f"bad id {value!r}")
    if person is not None and not (isinstance(person, str) and PERSON_ID_RE.fullmatch(person)):
        raise ValueError(f"bad person id {person!r}")
    if type(seq) is not int or type(ts_us) is not int:
        raise ValueError("seq and ts_us must be integers")
    tap_kind = Kind(kind)
    meal = MealPeriod(period) if period is not None else None
    if (tap_kind in MEAL_KINDS) != (meal is not None):
        raise ValueError("meal_period goes with meal kinds only")
    return StoredTap(site, LiveEvent(device, seq, ts_us, tap_kind, meal, person), event_id, card)
