"""The durable outbox: sequence numbers, event times, full disks and crashes."""

from __future__ import annotations

import multiprocessing
import os
import signal
import sqlite3
import time
from pathlib import Path

import pytest

from firmware_gateway.clock import ManualClock, SystemClock
from firmware_gateway.errors import OutboxFull
from firmware_gateway.outbox import Outbox
from warmcard.contract import Kind, MealPeriod, events_topic, parse_event

UID = "04A1B2C3D4E5F6"


def open_outbox(path: Path, clock: object = None, **kw: object) -> Outbox:
    return Outbox(path / "outbox.sqlite", "k-001", clock or ManualClock(), **kw)  # type: ignore[arg-type]


def test_seq_strictly_increasing_across_reopen(tmp_path: Path) -> None:
    clock = ManualClock()
    box = open_outbox(tmp_path, clock)
    first = [box.record(UID, Kind.CHECK_IN, person_id="p-1").seq for _ in range(3)]
    box.mark_acked(first)
    assert box.prune_acked(clock.now_us() + 1000) == 3  # table empty, counter kept
    box.close()
    box = open_outbox(tmp_path, clock)
    assert box.last_seq() == 3
    nxt = box.record(UID, Kind.CHECK_OUT, person_id="p-1")
    assert first == [1, 2, 3]
    assert nxt.seq == 4
    # what was committed is a valid wire event
    assert parse_event(nxt.to_bytes(), events_topic("k-001"), received_us=clock.now_us()) == nxt


def test_ts_bumped_when_clock_stands_still_or_steps_back(tmp_path: Path) -> None:
    clock = ManualClock()
    box = open_outbox(tmp_path, clock)
    t0 = clock.now_us()
    a = box.record(UID, Kind.CHECK_IN, person_id="p-1")
    b = box.record(UID, Kind.CHECK_OUT, person_id="p-1")  # clock stood still
    clock.set(t0 - 3_600_000_000)  # NTP steps the clock back an hour
    c = box.record(UID, Kind.CHECK_IN, person_id="p-1")
    assert [a.ts_us, b.ts_us, c.ts_us] == [t0, t0 + 1, t0 + 2]
    box.close()
    box = open_outbox(tmp_path, clock)  # the last ts survives a restart too
    assert box.record(UID, Kind.CHECK_OUT, person_id="p-1").ts_us == t0 + 3
    clock.set(t0 + 5_000_000)
    assert box.record(UID, Kind.CHECK_IN, person_id="p-1").ts_us == t0 + 5_000_000


def test_outbox_full_when_below_min_free_bytes_records_nothing(tmp_path: Path) -> None:
    box = open_outbox(tmp_path, min_free_bytes=2**62)
    with pytest.raises(OutboxFull, match="free space"):
        box.record(UID, Kind.CHECK_IN, person_id="p-1")
    assert box.last_seq() == 0
    assert box.depth() == 0


def test_sqlite_full_is_outbox_full_and_leaves_no_trace(tmp_path: Path) -> None:
    box = open_outbox(tmp_path)
    box.record(UID, Kind.CHECK_IN, person_id="p-1")
    # A real SQLITE_FULL: cap the database at its current size.
    pages = box._db.execute("PRAGMA page_count").fetchone()[0]
    box._db.execute(f"PRAGMA max_page_count={pages}")
    with pytest.raises(OutboxFull):
        for _ in range(500):
            box.record(UID, Kind.MEAL, person_id="p-1", meal_period=MealPeriod.LUNCH)
    last = box.last_seq()
    assert box.depth() == last
    assert [e.seq for e in box.pending(1000)] == list(range(1, last + 1))


def test_pending_acked_rejected_resend(tmp_path: Path) -> None:
    clock = ManualClock()
    box = open_outbox(tmp_path, clock)
    seqs = [box.record(UID, Kind.CHECK_IN, person_id="p-1").seq for _ in range(5)]
    assert [e.seq for e in box.pending(3)] == [1, 2, 3]
    box.mark_acked([1, 2])
    box.mark_rejected(3, 0x87, "Not authorized")
    assert [e.seq for e in box.pending(10)] == [4, 5]
    assert box.depth() == 3
    assert [(r.seq, r.code, r.count) for r in box.rejected()] == [(3, 0x87, 1)]
    assert box.retry_rejected() == 1
    assert [e.seq for e in box.pending(10)] == [3, 4, 5]
    box.mark_acked(seqs)
    assert box.depth() == 0
    assert box.resend(2, 3) == 2
    assert [e.seq for e in box.pending(10)] == [2, 3]
    # retention: acked events younger than the cut-off stay for replay and re-sending
    box.mark_acked([2, 3])
    assert box.prune_acked() == 0
    clock.advance(15 * 86400)
    assert box.prune_acked() == 5
    assert box.events_since(0) == []


def _write_burst(path: str, conn: multiprocessing.connection.Connection) -> None:
    box = Outbox(path, "k-001", SystemClock(), min_free_bytes=0)
    while True:
        event = box.record(UID, Kind.CHECK_IN, person_id="p-1")
        conn.send(event.seq)


def test_killed_mid_burst_keeps_integrity_and_never_reuses_seq(tmp_path: Path) -> None:
    path = str(tmp_path / "outbox.sqlite")
    ctx = multiprocessing.get_context("spawn")
    for _round in range(2):
        parent, child = ctx.Pipe(duplex=False)
        proc = ctx.Process(target=_write_burst, args=(path, child))
        proc.start()
        reported: list[int] = []
        deadline = time.monotonic() + 30
        while len(reported) < 30 and time.monotonic() < deadline:
            if parent.poll(0.5):
                reported.append(parent.recv())
        assert proc.pid is not None
        os.kill(proc.pid, signal.SIGKILL)
        proc.join()
        while parent.poll():
            reported.append(parent.recv())
        assert len(reported) >= 30
        with sqlite3.connect(path) as db:
            assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
            stored = [row[0] for row in db.execute("SELECT seq FROM events ORDER BY seq")]
        db.close()
        assert set(reported) <= set(stored)  # every tap it confirmed is there
        assert stored == list(range(1, len(stored) + 1))  # no gap, no reuse
    box = Outbox(path, "k-001", SystemClock(), min_free_bytes=0)
    assert box.record(UID, Kind.CHECK_OUT, person_id="p-1").seq == len(stored) + 1
    box.close()
