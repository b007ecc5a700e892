# mypy: allow-untyped-defs
"""Reconciliation against a real InfluxDB: exact gaps, days, heartbeats, CLI exit codes, API."""

from __future__ import annotations

import json
from datetime import date, timedelta
from zoneinfo import ZoneInfo

from typer.testing import CliRunner

from cloud_ingest.ops.reconcile import IN_FLIGHT, MISSING, Gap, check, day_bounds
from cloud_ingest.pipeline.lineprotocol import encode_tap
from tests.support.console import operator_client
from tests.support.ingest import TZ, write_ingest_toml
from tests.support.stack import Stack
from warmcard.command.cli import app
from warmcard.contract import DeviceStatus, Kind, TapEvent
from warmcard.timestamps import format_ts, new_event_id

DAY = date(2026, 11, 29)


def tap(device: str, seq: int, ts_us: int, **kw) -> TapEvent:
    return TapEvent(
        event_id=kw.pop("event_id", new_event_id(ts_us)),
        device_id=device,
        seq=seq,
        ts=format_ts(ts_us),
        card_uid=kw.pop("card_uid", "04A1B2C3"),
        kind=kw.pop("kind", Kind.CHECK_IN),
        person_id="P0001",
        **kw,
    )


def at(day: date, hour: int, minute: int = 0) -> int:
    """Microseconds of a local (site tz) time."""
    start, _ = day_bounds(day, ZoneInfo(TZ))
    return start + (hour * 60 + minute) * 60_000_000


def store(storage, site: str, events: list[TapEvent]) -> None:
    storage.write([encode_tap(e, site) for e in events])


def test_gaps_found_exactly(env):
    ids, _, storage, registry = env
    gate = ids["gate_a"]
    store(
        storage,
        ids["site_a"],
        [tap(gate, s, at(DAY, 9, s)) for s in range(1, 11) if s not in {4, 7, 8}],
    )
    report = check(storage, registry, [gate], DAY)
    assert [(g.from_seq, g.to_seq) for g in report.gaps] == [(4, 4), (7, 8)]
    assert all(g.state == MISSING and g.day == DAY.isoformat() for g in report.gaps)
    assert report.stored == {(gate, DAY.isoformat()): 7}
    assert report.conflicts == []
    assert report.missing_seqs == 3 and not report.clean
    # A device with an unbroken line is clean.
    other = ids["gate_b"]
    store(storage, ids["site_b"], [tap(other, s, at(DAY, 10, s)) for s in range(1, 6)])
    clean = check(storage, registry, [other], DAY)
    assert clean.clean and clean.stored == {(other, DAY.isoformat()): 5}


def test_gap_judged_on_the_whole_seq_line_across_days(env):
    ids, _, storage, registry = env
    gate = ids["gate_a"]
    before, after = DAY - timedelta(days=1), DAY + timedelta(days=1)
    store(
        storage,
        ids["site_a"],
        [tap(gate, s, at(before, 17, s)) for s in (1, 2, 3)]
        + [tap(gate, s, at(DAY, 8, s)) for s in (6, 7)]
        + [tap(gate, s, at(after, 8, s)) for s in (9, 10)],
    )
    report = check(storage, registry, [gate], DAY)
    assert report.gaps == [
        Gap(gate, 4, 5, before.isoformat(), DAY.isoformat(), MISSING),
        Gap(gate, 8, 8, DAY.isoformat(), after.isoformat(), MISSING),
    ]
    assert report.gaps[0].day == f"{before.isoformat()}..{DAY.isoformat()}"
    assert report.stored == {(gate, DAY.isoformat()): 2}
    # Over all three days, the same two gaps and every point.
    wide = check(storage, registry, [gate], (before, after))
    assert [(g.from_seq, g.to_seq) for g in wide.gaps] == [(4, 5), (8, 8)]
    assert sum(wide.stored.values()) == 7
    # A day with nothing stored still shows the gap that spans it.
    empty_day = DAY + timedelta(days=5)
    store(storage, ids["site_a"], [tap(gate, 14, at(empty_day + timedelta(days=1), 9))])
    spanning = check(storage, registry, [gate], empty_day)
    assert [(g.from_seq, g.to_seq) for g in spanning.gaps] == [(11, 13)]


def test_heartbeat_last_seq_tells_in_flight_from_missing(env):
    ids, _, storage, registry = env
    gate = ids["gate_a"]
    store(storage, ids["site_a"], [tap(gate, s, at(DAY, 9, s)) for s in (1, 3, 4, 5)])
    # No heartbeat: only the gap between stored seqs is known; nothing is said above seq 5.
    assert [(g.from_seq, g.to_seq) for g in check(storage, registry, [gate], DAY).gaps] == [(2, 2)]
    # The kiosk committed up to 9 and still holds 2 unacknowledged: 8-9 in flight, 6-7 missing.
    beat = DeviceStatus(device_id=gate, state="online", last_seq=9, outbox_depth=2)
    report = check(storage, registry, [gate], DAY, statuses={gate: beat})
    assert [(g.from_seq, g.to_seq, g.state) for g in report.gaps] == [
        (2, 2, MISSING),
        (6, 7, MISSING),
        (8, 9, IN_FLIGHT),
    ]
    assert report.gaps[-1].before_day is None
    # Everything delivered: the tail is missing, nothing above last_seq is a gap.
    beat = DeviceStatus(device_id=gate, state="online", last_seq=6, outbox_depth=0)
    report = check(storage, registry, [gate], DAY, statuses={gate: beat})
    assert [(g.from_seq, g.to_seq, g.state) for g in report.gaps] == [
        (2, 2, MISSING),
        (6, 6, MISSING),
    ]
    # A stale heartbeat (last_seq below what is stored) adds nothing.
    beat = DeviceStatus(device_id=gate, state="online", last_seq=4, outbox_depth=0)
    report = check(storage, registry, [gate], DAY, statuses={gate: beat})
    assert [(g.from_seq, g.to_seq) for g in report.gaps] == [(2, 2)]


def test_two_points_with_one_seq_are_a_storage_conflict(env):
    """The backstop for conflicts a per-worker index cannot see (another worker took one)."""
    ids, _, storage, registry = env
    gate = ids["gate_a"]
    events = [tap(gate, s, at(DAY, 9, s)) for s in (1, 2, 3)]
    twin = tap(gate, 2, at(DAY, 11))  # seq 2 again, later, other event id
    meal_kind = tap(gate, 3, events[2].ts_us, kind=Kind.CHECK_OUT)  # same time, other tags
    store(storage, ids["site_a"], [*events, twin, meal_kind])
    report = check(storage, registry, [gate], DAY)
    assert report.gaps == []
    found = {(c.seq, c.source) for c in report.conflicts}
    assert (2, "storage") in found and (3, "storage") in found
    by_seq = {c.seq: c for c in report.conflicts}
    assert set(by_seq[2].event_ids) == {events[1].event_id, twin.event_id}
    assert not report.clean


def test_cli_exit_codes_and_json(env, tmp_path):
    ids, settings, storage, _ = env
    gate, other = ids["gate_a"], ids["gate_b"]
    store(storage, ids["site_a"], [tap(gate, s, at(DAY, 9, s)) for s in (1, 2, 4)])
    store(storage, ids["site_b"], [tap(other, s, at(DAY, 9, s)) for s in (1, 2, 3)])
    config = write_ingest_toml(tmp_path, settings)
    runner = CliRunner()
    base = ["reconcile", "--config", str(config), "--day", DAY.isoformat(), "--status-wait-s", "0"]

    result = runner.invoke(app, [*base, "--device", gate, "--json"])
    assert result.exit_code == 1, result.output
    doc = json.loads(result.stdout)
    assert doc["clean"] is False and doc["stored"] == 3
    assert doc["devices"][0]["gaps"][0] | {} == {
        "device_id": gate,
        "from_seq": 3,
        "to_seq": 3,
        "count": 1,
        "day": DAY.isoformat(),
        "after_day": DAY.isoformat(),
        "before_day": DAY.isoformat(),
        "state": "missing",
    }

    result = runner.invoke(app, [*base, "--device", other])
    assert result.exit_code == 0, result.output
    assert "Clean: 3 stored" in result.stdout

    result = runner.invoke(app, [*base, "--site", ids["site_a"]])
    assert result.exit_code == 1
    assert "缺号 gap seq 3 (1)" in result.stdout

    bad = runner.invoke(app, ["reconcile", "--config", str(config), "--day", "2026-02-30"])
    assert bad.exit_code == 2 and "YYYY-MM-DD" in bad.stderr
    both = runner.invoke(
        app, ["reconcile", "--config", str(config), "--day", "2026-11-29", "--from", "2026-11-28"]
    )
    assert both.exit_code == 2


def test_api_reconcile(env):
    ids, settings, storage, _ = env
    gate = ids["gate_a"]
    store(storage, ids["site_a"], [tap(gate, s, at(DAY, 9, s)) for s in (1, 3)])
    service = Stack(settings)
    try:
        client = operator_client(service)  # no lifespan: nothing to consume
        service.live.update_status(
            gate, DeviceStatus(device_id=gate, state="online", last_seq=5, outbox_depth=1)
        )
        body = client.get("/api/v1/reconcile", params={"device": gate, "day": "2026-11-29"}).json()
        gaps = [(g["from_seq"], g["to_seq"], g["state"]) for g in body["devices"][0]["gaps"]]
        assert gaps == [(2, 2, MISSING), (4, 4, MISSING), (5, 5, IN_FLIGHT)]
        assert body["devices"][0]["heartbeat"]["last_seq"] == 5
        ranged = client.get(
            "/api/v1/reconcile",
            params={"site": ids["site_a"], "from": "2026-11-28", "to": "2026-11-29"},
        ).json()
        assert {d["device_id"] for d in ranged["devices"]} == {gate, ids["canteen_a"]}
        assert len(ranged["devices"][0]["days"]) == 2
        assert client.get("/api/v1/reconcile", params={"day": "29/11/2026"}).status_code == 422
        assert client.get("/api/v1/reconcile", params={"site": "nowhere"}).status_code == 404
    finally:
        service.stop()
