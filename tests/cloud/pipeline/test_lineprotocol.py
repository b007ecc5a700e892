# mypy: allow-untyped-defs
"""Line protocol escaping, checked byte for byte and by a round trip through real InfluxDB."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from cloud_ingest.errors import InvalidPoint
from cloud_ingest.pipeline.influx import InfluxV1, quote_string
from cloud_ingest.pipeline.lineprotocol import (
    HAND_DEVICE,
    encode_hand_meal,
    encode_point,
    encode_tap,
    escape_key,
    escape_string_field,
)
from cloud_ingest.pipeline.settings import InfluxSettings
from warmcard.contract import Kind, MealPeriod, TapEvent
from warmcard.timestamps import format_ts, new_event_id

TS = 1_796_000_000_123_456


def _event(**kw):
    values: dict[str, Any] = dict(
        event_id=new_event_id(TS),
        device_id="kiosk-1",
        seq=42,
        ts=format_ts(TS),
        card_uid="04A1B2C3",
        kind=Kind.MEAL,
        meal_period=MealPeriod.LUNCH,
        person_id="P0001",
    )
    values.update(kw)
    return TapEvent(**values)


def test_tap_point_exact_line():
    ev = _event()
    line = encode_tap(ev, "site-1")
    assert line == (
        "taps,device=kiosk-1,kind=meal,meal_period=lunch,site=site-1 "
        f'seq=42i,event_id="{ev.event_id}",card_uid="04A1B2C3",person_id="P0001",'
        f"auto=false,clock_synced=true {TS}"
    )


def test_manual_meal_is_marked_with_its_witness():
    ev = _event(manual=True, witness_card="04FFEE01")
    line = encode_tap(ev, "site-1")
    assert line == (
        "taps,device=kiosk-1,kind=meal,meal_period=lunch,site=site-1 "
        f'seq=42i,event_id="{ev.event_id}",card_uid="04A1B2C3",person_id="P0001",'
        f'auto=false,clock_synced=true,manual=true,witness="card:04FFEE01" {TS}'
    )


def test_unknown_card_has_no_person_and_no_meal_tag():
    ev = _event(kind=Kind.UNKNOWN_CARD, meal_period=None, person_id=None)
    line = encode_tap(ev, "site-1")
    assert "meal_period" not in line and "person_id" not in line
    assert line.startswith("taps,device=kiosk-1,kind=unknown_card,site=site-1 seq=42i,")


@pytest.mark.parametrize(
    ("raw", "escaped"),
    [
        ("a,b", r"a\,b"),
        ("a=b", r"a\=b"),
        ("a b", r"a\ b"),
        ("x,site=evil seq=1i", r"x\,site\=evil\ seq\=1i"),
        ("幸福小院", "幸福小院"),
    ],
)
def test_tag_escaping(raw, escaped):
    assert escape_key(raw) == escaped


@pytest.mark.parametrize("bad", ["a\nb", "a\rb", "trailing\\", "a\\ b", ""])
def test_tag_values_that_cannot_be_expressed_are_refused(bad):
    with pytest.raises(InvalidPoint):
        escape_key(bad)


def test_string_field_escaping():
    assert escape_string_field('say "hi"') == r'"say \"hi\""'
    assert escape_string_field("C:\\path") == r'"C:\\path"'
    assert escape_string_field('end\\"') == r'"end\\\""'
    with pytest.raises(InvalidPoint):
        escape_string_field("two\nlines")


def test_encode_point_types_and_order():
    line = encode_point(
        "m m", {"z": "1", "a": "x y", "n": None}, {"i": 3, "b": True, "f": 1.5, "s": "q"}, 7
    )
    assert line == r'm\ m,a=x\ y,z=1 i=3i,b=true,f=1.5,s="q" 7'
    with pytest.raises(InvalidPoint):
        encode_point("m", {}, {"x": None}, 1)


def test_injection_round_trip_through_influxdb(influxd, influx_db):
    """Hostile values stay values: one point, tags and strings read back exactly."""
    storage = InfluxV1(InfluxSettings(url=influxd.url, database=influx_db))
    site = "x,kind=check_in site=evil"
    text = 'he said "hi" \\ then\\ 7i ,a=b'
    try:
        storage.write([encode_point("taps", {"site": site}, {"seq": 1, "note": text}, TS)])
        series = storage.query(
            f'SELECT "seq", "note", "site", "kind" FROM "taps" WHERE "site" = {quote_string(site)}'
        )
    finally:
        storage.close()
    assert len(series) == 1
    rows = series[0].rows()
    assert rows == [{"time": TS, "seq": 1, "note": text, "site": site, "kind": None}]


def test_same_event_written_three_times_is_one_point(influxd, influx_db):
    storage = InfluxV1(InfluxSettings(url=influxd.url, database=influx_db))
    line = encode_tap(_event(), "site-1")
    try:
        for _ in range(3):
            storage.write([line])
        series = storage.query('SELECT count("seq") FROM "taps"')
    finally:
        storage.close()
    assert series[0].values[0][1] == 1


def test_write_errors_are_translated(influxd, influx_db):
    from cloud_ingest.errors import StorageRejected, StorageUnavailable

    storage = InfluxV1(InfluxSettings(url=influxd.url, database=influx_db))
    try:
        with pytest.raises(StorageRejected, match="unable to parse"):
            storage.write(["taps,site=a this is not line protocol"])
    finally:
        storage.close()
    closed = InfluxV1(InfluxSettings(url="http://127.0.0.1:9", database="x", timeout_s=1))
    with pytest.raises(StorageUnavailable):
        closed.write(["m f=1i 1"])
    closed.close()
    assert httpx.get(f"{influxd.url}/ping").status_code == 204


def test_a_console_hand_meal_is_a_manual_meal_point_on_a_device_no_kiosk_can_have():
    line = encode_hand_meal("xs-01", "lunch", 42, "e-1", "P0003", "li.canteen", 1_700_000_000)
    assert line == (
        "taps,device=console:hand,kind=meal,meal_period=lunch,site=xs-01 "
        'seq=42i,event_id="e-1",person_id="P0003",auto=false,clock_synced=true,'
        'manual=true,witness="user:li.canteen" 1700000000'
    )
    with pytest.raises(ValueError):  # a kiosk's id is checked against DEVICE_ID_RE
        _event(device_id=HAND_DEVICE)
