"""The wire contract between kiosks and the cloud: topics, payloads, validation.

Both sides import this module and nothing else of each other. docs/protocol.md describes it.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from enum import StrEnum
from functools import cached_property, lru_cache
from typing import Annotated, Any, Literal, TypeVar

import msgspec
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    StrictBool,
    StrictInt,
    ValidationError,
    field_validator,
    model_serializer,
    model_validator,
)

from warmcard.ids import (
    DEVICE_ID_RE,
    CardUid,
    CardUidWire,
    DeviceId,
    DeviceIdWire,
    EventCardUid,
    EventCardUidWire,
    EventId,
    EventIdWire,
    HhMm,
    PersonId,
    PersonIdWire,
    RequestId,
    SiteId,
    TsWire,
    WireTs,
    is_erased,
)
from warmcard.localtime import DEFAULT_TZ
from warmcard.rejections import InvalidPayload, Reason, schema_error
from warmcard.timestamps import now_us, parse_ts
from warmcard.wirejson import MAX_PAYLOAD_BYTES, decode_json

SCHEMA_VERSION = 1
TOPIC_ROOT = "warmcard/v1/devices"
EVENTS_FILTER = f"{TOPIC_ROOT}/+/events"
STATUS_FILTER = f"{TOPIC_ROOT}/+/status"
# A resend command asks for at most this many seqs; a larger gap is split into several commands.
MAX_RESEND_RANGE = 10_000
# One roster message (a whole roster, or one part of a split one) is at most this: the broker's
# max_packet_size (64 KiB, deploy/mosquitto/mosquitto.conf) less room for topic and properties.
MAX_ROSTER_MESSAGE_BYTES = 60 * 1024
# A whole roster as a kiosk caches it, after joining its parts (about 40,000 entries).
MAX_ROSTER_BYTES = 8 * 1024 * 1024
MAX_ROSTER_PARTS = 128
MAX_SEQ = 2**53 - 1  # exact in JSON numbers and in InfluxDB int64 fields

# Event times outside this window are wrong clocks, not real taps.
EARLIEST_EVENT = datetime(2024, 1, 1, tzinfo=UTC)
MAX_FUTURE_SKEW_S = 300


class Kind(StrEnum):
    CHECK_IN = "check_in"
    CHECK_OUT = "check_out"
    MEAL = "meal"
    MEAL_REPEAT = "meal_repeat"
    UNKNOWN_CARD = "unknown_card"


MEAL_KINDS = frozenset({Kind.MEAL, Kind.MEAL_REPEAT})


class MealPeriod(StrEnum):
    BREAKFAST = "breakfast"
    LUNCH = "lunch"
    DINNER = "dinner"


class Role(StrEnum):
    """What a card's holder is at the site: an elder served, or staff who vouch for a meal."""

    ELDER = "elder"
    STAFF = "staff"


class Mode(StrEnum):
    ENTRANCE = "entrance"
    CANTEEN = "canteen"


class ReaderState(StrEnum):
    OK = "ok"
    FAULT = "fault"
    ABSENT = "absent"


# ---------------------------------------------------------------------------- topics


def device_topic(device_id: str, leaf: str) -> str:
    """`warmcard/v1/devices/<id>/<leaf>`; a device id that breaks DEVICE_ID_RE is a ValueError.

    An id such as ``'K GATE/ab#'`` would otherwise build a topic with extra levels or a
    wildcard, so every topic builder checks it here.
    """
    if not DEVICE_ID_RE.fullmatch(device_id):
        raise ValueError(f"device id {device_id!r} is not a-z, 0-9 and '-' (2-63 characters)")
    return f"{TOPIC_ROOT}/{device_id}/{leaf}"


def events_topic(device_id: str) -> str:
    return device_topic(device_id, "events")


def status_topic(device_id: str) -> str:
    return device_topic(device_id, "status")


def config_topic(device_id: str) -> str:
    return device_topic(device_id, "config")


def roster_topic(device_id: str) -> str:
    return device_topic(device_id, "roster")


def roster_part_topic(device_id: str, part: int) -> str:
    """Where part `part` (2 and up) of a split roster is retained; part 1 is on roster_topic."""
    return f"{roster_topic(device_id)}/{part}"


def roster_parts_filter(device_id: str) -> str:
    """What a kiosk subscribes to for the further parts of its split roster."""
    return f"{roster_topic(device_id)}/+"


def command_topic(device_id: str) -> str:
    return device_topic(device_id, "command")


def shared_subscription(group: str, topic_filter: str) -> str:
    """MQTT 5 shared subscription: the broker spreads messages across the group's members."""
    return f"$share/{group}/{topic_filter}"


@lru_cache(maxsize=8192)  # ingest asks this of the same few thousand topics all day long
def device_from_topic(topic: str) -> str:
    """The device id in `warmcard/v1/devices/<id>/<leaf>`; raises InvalidPayload otherwise."""
    parts = topic.split("/")
    if len(parts) != 5 or "/".join(parts[:3]) != TOPIC_ROOT or not DEVICE_ID_RE.fullmatch(parts[3]):
        raise InvalidPayload(Reason.BAD_TOPIC, f"not a device topic: {topic[:200]!r}")
    return parts[3]


# ---------------------------------------------------------------------------- payloads


M = TypeVar("M", bound=BaseModel)


class _Wire(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _omit_defaults(
    model: BaseModel, handler: SerializerFunctionWrapHandler, fields: dict[str, Any]
) -> dict[str, Any]:
    """Serialise, leaving out the given fields while they hold these (default) values.

    Fields added to v1 after its release are written only when they say something, so a payload
    that does not use them is byte-for-byte what an older peer expects (docs/protocol.md,
    "Versioning").
    """
    data: dict[str, Any] = handler(model)
    for name, default in fields.items():
        if name in data and data[name] == default:
            del data[name]
    return data


class TapEvent(_Wire):
    """One tap, decided at the kiosk. Carries no names, only a pseudonymous person id."""

    v: Literal[1] = 1
    event_id: EventId
    device_id: DeviceId
    seq: StrictInt = Field(ge=1, le=MAX_SEQ)
    ts: WireTs
    card_uid: EventCardUid  # (v1.3) or an erasure's token, warmcard.downlink_commands
    kind: Kind
    meal_period: MealPeriod | None = None
    person_id: PersonId | None = None
    auto: StrictBool = False  # a check_out the kiosk made itself at closing time
    clock_synced: StrictBool = True  # False when the kiosk had no NTP sync at tap time
    # Added in v1.1 (omitted when false/absent): a meal recorded by staff for an elder without
    # the card, vouched for by the staff card `witness_card`; card_uid is the elder's card.
    manual: StrictBool = False
    witness_card: CardUid | None = None

    @model_serializer(mode="wrap")
    def _compatible(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        return _omit_defaults(self, handler, {"manual": False, "witness_card": None})

    @field_validator("ts")
    @classmethod
    def _ts_format(cls, value: str) -> str:
        parse_ts(value)
        return value

    @model_validator(mode="after")
    def _consistent(self) -> TapEvent:
        broken = _inconsistency(self)
        if broken is not None:
            raise ValueError(broken)
        return self

    @property
    def erased(self) -> bool:
        """A tap of an erased person, pseudonymised at the kiosk (v1.3): names nobody."""
        return is_erased(self.card_uid)

    @cached_property
    def ts_us(self) -> int:
        """The event time in µs; parsed once (ingest reads it several times per event)."""
        return parse_ts(self.ts)

    def to_bytes(self) -> bytes:
        return self.model_dump_json(exclude_defaults=False).encode()


def _inconsistency(e: TapEvent) -> str | None:
    """The first cross-field rule a tap breaks (TapEvent's validator and the fast path)."""
    if (e.kind in MEAL_KINDS) != (e.meal_period is not None):
        return "meal_period is required for meal kinds and forbidden otherwise"
    if (e.kind == Kind.UNKNOWN_CARD) != (e.person_id is None):
        return "person_id is required, except for unknown_card"
    if e.auto and e.kind != Kind.CHECK_OUT:
        return "auto is only for check_out"
    if e.manual and e.kind not in MEAL_KINDS:
        return "manual is only for meal and meal_repeat"
    if e.manual != (e.witness_card is not None):
        return "witness_card is required on a manual meal and forbidden otherwise"
    if e.witness_card is not None and e.witness_card == e.card_uid:
        return "witness_card must be another card than card_uid"
    if is_erased(e.card_uid) and e.person_id is not None and not is_erased(e.person_id):
        return "an erased card_uid goes with an erased person_id or none"
    return None


class _TapWire(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, gc=False):
    """TapEvent's fields for the fast path, in order, UNSET if absent; untracked: no containers."""

    v: Literal[1]
    event_id: EventIdWire
    device_id: DeviceIdWire
    seq: Annotated[int, msgspec.Meta(ge=1, le=MAX_SEQ)]
    ts: TsWire
    card_uid: EventCardUidWire
    kind: Kind
    meal_period: MealPeriod | msgspec.UnsetType | None = msgspec.UNSET
    person_id: PersonIdWire | msgspec.UnsetType | None = msgspec.UNSET
    auto: bool | msgspec.UnsetType = msgspec.UNSET
    clock_synced: bool | msgspec.UnsetType = msgspec.UNSET
    manual: bool | msgspec.UnsetType = msgspec.UNSET
    witness_card: CardUidWire | msgspec.UnsetType | None = msgspec.UNSET


class DeviceStatus(_Wire):
    """Heartbeat on the retained status topic; the last-will sets state to offline."""

    v: Literal[1] = 1
    device_id: DeviceId
    state: Literal["online", "offline"]
    ts: str | None = None
    uptime_s: float | None = None
    outbox_depth: int | None = None
    last_seq: int | None = None  # highest seq committed at the kiosk, sent or not
    reader: ReaderState | None = None
    disk_free_bytes: int | None = None
    clock_synced: bool | None = None
    software: str | None = None
    outbox_rejected: int | None = None  # events the broker refused (PUBACK >= 0x80), kept
    last_reject: str | None = None  # e.g. "seq 17: 0x87 Not authorized"
    # (v1.3) request ids of the erase commands this kiosk has applied (acknowledgement)
    erased: list[RequestId] | None = Field(default=None, max_length=16)

    def to_bytes(self) -> bytes:
        return self.model_dump_json(exclude_none=True).encode()


class MealWindow(_Wire):
    period: MealPeriod
    start: HhMm
    end: HhMm


class DeviceConfig(_Wire):
    """Downlink, retained: what the cloud tells one kiosk about its site and mode."""

    v: Literal[1] = 1
    device_id: DeviceId
    site_id: SiteId
    mode: Mode
    tz: str = DEFAULT_TZ
    opening: HhMm = "07:00"
    closing: HhMm = "18:00"
    debounce_s: float = Field(default=10.0, ge=0, le=3600)
    meals: list[MealWindow] = Field(default_factory=list)
    # Added in v1.1 (omitted when empty): the site's name from the registry, for the screen.
    site_name: str = Field(default="", max_length=64)
    # Added in v1.3 (omitted when 0): the kiosk's enrol window ends then (µs since the epoch);
    # until then an unknown card shows "登记中" (being enrolled), not "未登记的卡".
    enrol_until_us: int = Field(default=0, ge=0)

    @model_serializer(mode="wrap")
    def _compatible(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        return _omit_defaults(self, handler, {"site_name": "", "enrol_until_us": 0})

    def to_bytes(self) -> bytes:
        return self.model_dump_json().encode()


class RosterEntry(_Wire):
    card_uid: CardUid
    person_id: PersonId
    display_name: str = Field(max_length=64)
    # Added in v1.1 (omitted for elders): staff cards open the kiosk's list for manual meals.
    role: Role = Role.ELDER

    @model_serializer(mode="wrap")
    def _compatible(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        return _omit_defaults(self, handler, {"role": Role.ELDER})


class Roster(_Wire):
    """Downlink, retained: the site's cards, with the names its screen shows. Nothing more.

    A roster over MAX_ROSTER_MESSAGE_BYTES travels in parts (warmcard.roster_split): part 1 on
    the roster topic, part i on `roster/<i>`, all with the whole roster's `version`; the kiosk
    joins them. A roster that fits is one message without `part`/`parts`, byte for
    byte what a v1.0 kiosk reads (docs/protocol.md, "Versioning").
    """

    v: Literal[1] = 1
    site_id: SiteId
    version: str
    entries: list[RosterEntry]
    # Added in v1.2 (omitted when 1): this message is part `part` of `parts`.
    part: StrictInt = Field(default=1, ge=1, le=MAX_ROSTER_PARTS)
    parts: StrictInt = Field(default=1, ge=1, le=MAX_ROSTER_PARTS)

    @model_serializer(mode="wrap")
    def _compatible(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        return _omit_defaults(self, handler, {"part": 1, "parts": 1})

    @model_validator(mode="after")
    def _part_in_range(self) -> Roster:
        if self.part > self.parts:
            raise ValueError("part must not exceed parts")
        return self

    def to_bytes(self) -> bytes:
        return self.model_dump_json().encode()


class ResendCommand(_Wire):
    """Downlink, QoS 1, not retained: re-send the outbox's events from_seq..to_seq (inclusive).

    Not retained: a retained command would run again at every reconnect, and a second command
    would replace the first. Reconciliation finds a gap that is still open and asks again.
    """

    v: Literal[1] = 1
    command: Literal["resend"] = "resend"
    request_id: RequestId
    device_id: DeviceId
    from_seq: StrictInt = Field(ge=1, le=MAX_SEQ)
    to_seq: StrictInt = Field(ge=1, le=MAX_SEQ)

    @model_validator(mode="after")
    def _bounded(self) -> ResendCommand:
        if self.to_seq < self.from_seq:
            raise ValueError("to_seq must not be below from_seq")
        if self.to_seq - self.from_seq + 1 > MAX_RESEND_RANGE:
            raise ValueError(f"at most {MAX_RESEND_RANGE} seqs per command")
        return self

    def to_bytes(self) -> bytes:
        return self.model_dump_json().encode()


# ---------------------------------------------------------------------------- parsing
#
# After strict JSON decoding (warmcard.wirejson: empty, too_large, bom, not_utf8, too_deep,
# invalid_json | duplicate_key | non_finite_number | huge_number, not_an_object), each payload
# type checks, in this order, the version, the schema and the cross-field rules.


def _check_version(data: dict[str, Any]) -> None:
    if "v" not in data:
        raise InvalidPayload(Reason.MISSING_FIELD, "v: field required")
    version = data["v"]
    if type(version) is not int or version != SCHEMA_VERSION:  # true and 1.0 are not 1
        raise InvalidPayload(Reason.UNKNOWN_VERSION, f"schema version {version!r:.50}")


_EARLIEST_EVENT_US = int(EARLIEST_EVENT.timestamp()) * 1_000_000


_TAP_DECODER = msgspec.json.Decoder(_TapWire)
_TAP_DEFAULTS = {n: f.default for n, f in TapEvent.model_fields.items() if not f.is_required()}
_TAP_FIELDS = set(TapEvent.model_fields)  # copied by difference(): model_copy updates its own
_SPACED_COLON = re.compile(rb"[ \t\n\r]:")


def _fast_event(payload: bytes) -> TapEvent | None:
    """The TapEvent the full checks would make of `payload`, or None: then they decide.

    The ingest worker's hot path. msgspec checks, in C, JSON syntax, types (true is no int,
    1.0 no 1), ranges, patterns and unknown fields, but keeps a duplicate key's last value: so
    a payload is taken here only if its count of `":` is the count of fields it set (one
    with whitespace before a colon goes the full way). A rejection's reason is always the full
    checks'; what is taken here they would take too, as this same TapEvent.
    """
    if len(payload) > MAX_PAYLOAD_BYTES or _SPACED_COLON.search(payload):
        return None
    try:
        wire = _TAP_DECODER.decode(payload)
        ts_us = parse_ts(wire.ts)
    except (msgspec.MsgspecError, ValueError):
        return None
    values = msgspec.structs.asdict(wire)
    unset = [name for name in _TAP_DEFAULTS if values[name] is msgspec.UNSET]
    if payload.count(b'":') != len(values) - len(unset):
        return None
    for name in unset:
        values[name] = _TAP_DEFAULTS[name]
    values["ts_us"] = ts_us  # the cached_property's slot
    # What model_construct makes, at a fifth of its cost (the test compares the two).
    event = TapEvent.__new__(TapEvent)
    object.__setattr__(event, "__dict__", values)
    object.__setattr__(event, "__pydantic_fields_set__", _TAP_FIELDS.difference(unset))
    object.__setattr__(event, "__pydantic_extra__", None)
    object.__setattr__(event, "__pydantic_private__", None)
    return None if _inconsistency(event) is not None else event


def _full_event(payload: bytes) -> TapEvent:
    data = decode_json(payload)
    _check_version(data)
    try:
        return TapEvent.model_validate(data)
    except ValidationError as exc:
        raise schema_error(exc) from None


def parse_event(payload: bytes, topic: str, *, received_us: int | None = None) -> TapEvent:
    """Validate one message from an events topic; raises InvalidPayload naming the broken rule.

    Never raises anything else for any bytes and any topic string.
    """
    topic_device = device_from_topic(topic)
    if not topic.endswith("/events"):
        raise InvalidPayload(Reason.BAD_TOPIC, f"not an events topic: {topic[:200]!r}")
    event = _fast_event(payload)
    if event is None:
        event = _full_event(payload)
    if event.device_id != topic_device:
        raise InvalidPayload(
            Reason.DEVICE_MISMATCH, f"payload says {event.device_id}, topic says {topic_device}"
        )
    ts_us = event.ts_us
    if ts_us < _EARLIEST_EVENT_US:
        raise InvalidPayload(Reason.CLOCK_PAST, f"event time {event.ts} is before 2024")
    now = now_us() if received_us is None else received_us
    if ts_us > now + MAX_FUTURE_SKEW_S * 1_000_000:
        raise InvalidPayload(Reason.CLOCK_FUTURE, f"event time {event.ts} is in the future")
    return event


def parse_model(model: type[M], payload: bytes, *, limit: int | None = None) -> M:
    """Validate a status, config or roster payload (a roster message: one part, at most
    MAX_ROSTER_MESSAGE_BYTES; `limit` raises that for a whole roster read from a local cache)."""
    if limit is None:
        limit = MAX_ROSTER_MESSAGE_BYTES if model is Roster else MAX_PAYLOAD_BYTES
    data = decode_json(payload, limit=limit)
    _check_version(data)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise schema_error(exc) from None
