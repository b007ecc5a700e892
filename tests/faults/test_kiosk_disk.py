"""The kiosk's disk fills up: the tap is refused visibly, never acknowledged and then lost."""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

from kiosk.policy import MSG_DISK_FULL, Outcome
from tests.faults.kiosks import read_outbox
from tests.faults.pipeline import Pipeline


@contextlib.contextmanager
def small_filesystem(path: Path, size: str = "2m") -> Iterator[bool]:
    """A real, tiny filesystem at `path` (tmpfs) when we may mount; else yields False."""
    path.mkdir(parents=True, exist_ok=True)
    mounted = os.geteuid() == 0 and (
        subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
            capture_output=True,
            check=False,
        ).returncode
        == 0
    )
    try:
        yield mounted
    finally:
        if mounted:
            subprocess.run(["umount", "-l", str(path)], check=False)


def fill(path: Path) -> Path:
    """Write until the filesystem says ENOSPC."""
    filler = path / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT)
    try:
        while True:
            os.write(fd, b"\0" * 4096)
    except OSError:
        pass
    finally:
        os.close(fd)
    return filler


def test_disk_full_tap_refused_visibly_nothing_lost(pipeline: Pipeline) -> None:
    """13. The SD card fills up: SQLite's own "disk is full" (ENOSPC on a real tmpfs; where
    mounting is not allowed, SQLite's max_page_count gives the same SQLITE_FULL) makes the
    tap FAULT with the disk-full message; no event is recorded; after space is freed taps are
    recorded again and everything recorded arrives once."""
    pipeline.start_ingest()
    data_dir = pipeline.tmp / "sd-card"
    with small_filesystem(data_dir) as mounted:
        gate = pipeline.kiosk("gate_a", data_dir=data_dir / "warmcard")
        gate.tap(20)
        gate.wait_sent()
        before = gate.gateway.outbox.last_seq()
        if mounted:
            filler = fill(data_dir)
        else:
            db = gate.gateway.outbox._db
            pages = db.execute("PRAGMA page_count").fetchone()[0]
            db.execute(f"PRAGMA max_page_count={pages}")
        shown = len(gate.feedback.shown)
        gate.tap(30)
        refused = gate.feedback.shown[shown:]
        faults = [m for o, m in refused if o is Outcome.FAULT]
        # Every tap that was not recorded was refused visibly with the disk-full message.
        recorded = gate.gateway.outbox.last_seq() - before
        assert len(faults) >= 10 and len(faults) + recorded == 30
        assert all(m == MSG_DISK_FULL for m in faults)
        if mounted:
            filler.unlink()
        else:
            gate.gateway.outbox._db.execute("PRAGMA max_page_count=1073741823")
        gate.tap(10)
        assert [o for o, _ in gate.feedback.shown[-10:]].count(Outcome.FAULT) == 0
        gate.wait_sent()
        events = read_outbox(gate.outbox_path)
        assert len(events) == 20 + recorded + 10
        assert pipeline.check() == len(events)
        gate.stop()  # before the filesystem goes away
        pipeline.kiosks.remove(gate)
        print(f"disk full via {'tmpfs ENOSPC' if mounted else 'max_page_count'}")
