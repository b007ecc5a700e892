"""InfluxDB line protocol, and the one point every tap becomes.

The tap point:

    taps,device=<device>,kind=<kind>[,meal_period=<period>],site=<site>
        seq=<n>i,event_id="<uuid>",card_uid="<uid>"[,person_id="<id>"],auto=<b>,clock_synced=<b>
        [,manual=true,witness="card:<staff card uid>"]
        <device event time in microseconds>

A meal recorded by hand carries `manual=true` and who vouched for it in `witness`: `card:<uid>`
for a staff card at the kiosk (TapEvent.witness_card); the console's hand-recorded meal uses the
same two fields with `user:<account>`. Other taps carry neither, so their points are unchanged.

written with `precision=u`. Tags are only low-cardinality values (site, device, kind, meal
period); ids that grow with the population (card, person, event) are fields.

Why redelivery never double-counts: InfluxDB identifies a point by (measurement, tag set,
timestamp) and a second write of the same identity overwrites the first. A device's event
times are strictly increasing, so one device never has two events at the same microsecond,
and the same event re-delivered by MQTT (at-least-once) produces the same identity again:
it overwrites itself. Counting points therefore counts events exactly once, in any order of
arrival.

Escaping follows the InfluxDB 1.x rules: in the measurement, comma and space are escaped; in
tag keys, tag values and field keys, comma, equals and space are escaped; string field values
are double-quoted with `"` and `\\` escaped. Newlines cannot be expressed in 1.x line
protocol, and a backslash in a key or tag would combine with the next escape, so both are
refused (InvalidPoint) rather than written ambiguously.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache

from cloud_ingest.errors import InvalidPoint
from warmcard.contract import TapEvent

MEASUREMENT = "taps"
# Taps that do not match the registry (cloud_ingest.pipeline.provenance): the same point shape,
# kept apart so that no count (live, reports, alerts) reads them; reconcile reads both.
SUSPECT_MEASUREMENT = "suspect_taps"

_FORBIDDEN = ("\n", "\r", "\\")
_KEY_TABLE = str.maketrans({",": "\\,", "=": "\\=", " ": "\\ "})
_MEASUREMENT_TABLE = str.maketrans({",": "\\,", " ": "\\ "})

FieldValue = bool | int | float | str


def _check(value: str, what: str) -> None:
    if not value:
        raise InvalidPoint(f"{what} is empty")
    for ch in _FORBIDDEN:
        if ch in value:
            raise InvalidPoint(
                f"{what} {value[:60]!r} contains {ch!r}, which line protocol cannot carry"
            )


def escape_measurement(name: str) -> str:
    _check(name, "measurement")
    return name.translate(_MEASUREMENT_TABLE)


@lru_cache(maxsize=8192)  # ingest escapes the same devices and sites for every tap
def escape_key(text: str, what: str = "tag") -> str:
    """Escape a tag key, tag value or field key."""
    _check(text, what)
    return text.translate(_KEY_TABLE)


def escape_string_field(value: str) -> str:
    """A string field value, quoted."""
    if "\n" in value or "\r" in value:
        raise InvalidPoint(f"string field {value[:60]!r} contains a newline")
    if '"' in value or "\\" in value:
        value = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{value}"'


def _field(value: FieldValue) -> str:
    if isinstance(value, bool):  # before int: bool is an int subclass
        return "true" if value else "false"
    if isinstance(value, int):
        return f"{value}i"
    if isinstance(value, float):
        return repr(value)
    return escape_string_field(value)


def encode_point(
    measurement: str,
    tags: Mapping[str, str | None],
    fields: Mapping[str, FieldValue | None],
    timestamp: int,
) -> str:
    """One line; tags sorted by key (InfluxDB's recommended order), None values omitted."""
    parts = [escape_measurement(measurement)]
    for key in sorted(tags):
        value = tags[key]
        if value is not None:
            parts.append(f"{escape_key(key, 'tag key')}={escape_key(value, 'tag value')}")
    field_text = ",".join(
        f"{escape_key(key, 'field key')}={_field(value)}"
        for key, value in fields.items()
        if value is not None
    )
    if not field_text:
        raise InvalidPoint("a point needs at least one field")
    return f"{','.join(parts)} {field_text} {int(timestamp)}"


def witness_of(event: TapEvent) -> str:
    """Who vouched for a meal recorded by hand, as the `witness` field holds it."""
    return f"card:{event.witness_card}"


def encode_tap(
    event: TapEvent, site_id: str, ts_us: int | None = None, *, measurement: str = MEASUREMENT
) -> str:
    """The tap point for one validated event, stamped with the registry's site."""
    tags = f"kind={event.kind.value}"
    if event.meal_period is not None:
        tags += f",meal_period={event.meal_period.value}"
    tags += f",site={escape_key(site_id, 'site')}"
    fields = (
        f"seq={event.seq}i,event_id={escape_string_field(event.event_id)}"
        f",card_uid={escape_string_field(event.card_uid)}"
    )
    if event.person_id is not None:
        fields += f",person_id={escape_string_field(event.person_id)}"
    fields += (
        f",auto={'true' if event.auto else 'false'}"
        f",clock_synced={'true' if event.clock_synced else 'false'}"
    )
    if event.manual and event.witness_card is not None:
        fields += f",manual=true,witness={escape_string_field(witness_of(event))}"
    ts = event.ts_us if ts_us is None else ts_us
    return f"{measurement},device={escape_key(event.device_id, 'device')},{tags} {fields} {ts}"
