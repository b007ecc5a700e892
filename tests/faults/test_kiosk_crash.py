"""The kiosk process killed (SIGKILL: crash or pulled plug) around a publish and mid-write."""

from __future__ import annotations

import os
import signal
import sqlite3

import pytest

from tests.faults.kiosks import read_outbox
from tests.faults.pipeline import Pipeline, wait_until
from tests.faults.tcpproxy import has_mqtt_packet

PUBLISH, PUBACK = 3, 4


def test_kiosk_killed_just_before_and_just_after_a_publish(pipeline: Pipeline) -> None:
    """3. SIGKILL with a tap committed but not yet published; SIGKILL as its PUBACK arrives."""
    pipeline.start_ingest()
    kiosk = pipeline.kiosk_process("gate_a")
    kiosk.feed(5)
    wait_until(lambda: len(read_outbox(kiosk.outbox_path)) == 5)
    pipeline.check()

    # Just before: the tap is on disk, the link is down so it cannot have been published.
    pipeline.proxy.cut()
    kiosk.feed(1)
    wait_until(lambda: len(read_outbox(kiosk.outbox_path)) == 6)
    kiosk.kill()
    assert read_outbox(kiosk.outbox_path)[-1][1] == "pending"
    pipeline.proxy.restore()
    kiosk.start()
    pipeline.check()

    # Just after: the broker has the PUBLISH and answers; the kiosk dies before the PUBACK.
    assert kiosk.proc is not None
    pid = kiosk.proc.pid

    def kill_on_puback(chunk: bytes) -> bool:
        if has_mqtt_packet(chunk, PUBACK):
            os.kill(pid, signal.SIGKILL)
            return True
        return False

    pipeline.proxy.cut_when(kill_on_puback)
    kiosk.feed(1)
    wait_until(lambda: not pipeline.proxy.armed)
    kiosk.kill()
    outbox = read_outbox(kiosk.outbox_path)
    assert len(outbox) == 7 and outbox[-1][1] == "pending"  # sent, but never acknowledged
    # The broker passed it on: InfluxDB has seq 7 while the kiosk still holds it pending.
    wait_until(lambda: 7 in {int(r["seq"]) for r in pipeline.stored(kiosk.device_id)})
    kiosk.start()
    wait_until(lambda: read_outbox(kiosk.outbox_path)[-1][1] == "acked")
    kiosk.feed(3)
    wait_until(lambda: len(read_outbox(kiosk.outbox_path)) == 10)
    assert pipeline.check() == 10


@pytest.mark.slow
def test_power_cut_during_a_write_burst(pipeline: Pipeline) -> None:
    """4. SIGKILL during a burst of outbox writes: the database is intact, no seq is reused."""
    pipeline.start_ingest()
    kiosk = pipeline.kiosk_process("canteen_a")
    for _ in range(3):
        kiosk.feed(400)
        wait_until(lambda: len(read_outbox(kiosk.outbox_path)) >= kiosk.fed - 350, timeout=30)
        kiosk.kill()  # while ~hundreds of taps are still being committed one by one
        conn = sqlite3.connect(kiosk.outbox_path)
        try:
            assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
            last = conn.execute("SELECT value FROM state WHERE key='last_seq'").fetchone()[0]
            top = conn.execute("SELECT max(seq), count(*) FROM events").fetchone()
        finally:
            conn.close()
        # The seq counter and the events table were committed together.
        assert (last, last) == top
        assert last < kiosk.fed  # the kill did land mid-burst
        kiosk.start()
        kiosk.fed = last  # taps still in the pipe died with the process; carry on from here
    kiosk.feed(20)
    wait_until(lambda: len(read_outbox(kiosk.outbox_path)) == kiosk.fed)
    # Seqs 1..n, each once, each stored once (check() also asserts the seqs have no holes).
    assert pipeline.check(timeout=60) == kiosk.fed
