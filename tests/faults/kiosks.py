"""The fault suite's kiosks: in-process (the real running kiosk on a SimReader) or a
`warmcard kiosk` child fed through `sim:fifo=`, and what their outboxes hold."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import threading
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from firmware_gateway.clock import SystemClock
from firmware_gateway.readers.sim import SimReader
from firmware_gateway.uplink import UplinkTiming
from kiosk.policy import Outcome
from kiosk.runtime import Kiosk as RunningKiosk
from tests.support.ingest import wait_for
from warmcard.contract import Mode, TapEvent

TZ = "Asia/Shanghai"
FAST = UplinkTiming(
    backoff_min_s=0.05, backoff_max_s=0.5, idle_wait_s=0.1, drain_s=1.0, connack_timeout_s=3.0
)
PEOPLE = 40
DEVICES = {"gate_a": ("site_a", Mode.ENTRANCE), "canteen_a": ("site_a", Mode.CANTEEN)}
DEVICES |= {"gate_b": ("site_b", Mode.ENTRANCE)}

METRICS_TOKEN = "faults-metrics-token-0123456789"


def card(i: int) -> str:
    """The card of person i % PEOPLE (all registered, so kinds are real check-ins and meals)."""
    return f"04FA{i % PEOPLE:04X}"


class OffsetClock(SystemClock):
    """The machine's clocks with a settable wall-clock error: an RTC-less Pi before NTP."""

    def __init__(self, offset_s: float = 0.0, *, synced: bool = True) -> None:
        self.offset_us = round(offset_s * 1_000_000)
        self._synced = synced

    def now_us(self) -> int:
        return super().now_us() + self.offset_us

    def synced(self) -> bool:
        return self._synced

    def set(self, offset_s: float, *, synced: bool) -> None:
        """What NTP does: step the wall clock and declare it synchronised."""
        self.offset_us = round(offset_s * 1_000_000)
        self._synced = synced


class RecordingFeedback:
    """What the person at the kiosk saw, in order."""

    def __init__(self) -> None:
        self.shown: list[tuple[Outcome, str]] = []
        self._cond = threading.Condition()

    def show(self, outcome: Outcome, message: str = "") -> None:
        with self._cond:
            self.shown.append((outcome, message))
            self._cond.notify_all()

    def wait_count(self, n: int, timeout: float = 60.0) -> None:
        with self._cond:
            assert self._cond.wait_for(lambda: len(self.shown) >= n, timeout), (
                f"only {len(self.shown)} of {n} taps answered"
            )


@dataclass
class Kiosk:
    """An in-process kiosk: the real running kiosk with a SimReader."""

    device_id: str
    gateway: RunningKiosk
    reader: SimReader
    feedback: RecordingFeedback
    data_dir: Path
    taps: int = 0

    @property
    def outbox_path(self) -> Path:
        return self.data_dir / "outbox.sqlite"

    def tap(self, n: int = 1, *, start: int | None = None, wait: bool = True) -> None:
        """Tap n cards (cycling through the registered people), waiting until each is answered."""
        first = self.taps if start is None else start
        for i in range(first, first + n):
            self.reader.tap(card(i))
        self.taps += n
        if wait:
            self.feedback.wait_count(self.taps)

    def outcomes(self) -> Counter[Outcome]:
        return Counter(o for o, _ in self.feedback.shown)

    def wait_sent(self, timeout: float = 30.0) -> None:
        wait_for(lambda: self.gateway.outbox.depth() == 0, timeout=timeout)

    def stop(self) -> None:
        self.gateway.stop(timeout=5)


@dataclass
class KioskProcess:
    """`warmcard kiosk` as systemd runs it, its reader fed through a named pipe."""

    device_id: str
    data_dir: Path
    config_path: Path
    fifo: Path
    proc: subprocess.Popen[bytes] | None = None
    fed: int = 0

    @property
    def outbox_path(self) -> Path:
        return self.data_dir / "outbox.sqlite"

    def start(self) -> None:
        log = (self.data_dir.parent / f"{self.device_id}.log").open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "warmcard", "kiosk", "--config", str(self.config_path)],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        wait_for(self.fifo.exists, timeout=20)

    def feed(self, n: int) -> None:
        """Write n UIDs into the pipe, one per line (the kiosk reads them as taps)."""
        lines = "".join(f"{card(i)}\n" for i in range(self.fed, self.fed + n))
        self.fed += n
        fd = os.open(self.fifo, os.O_WRONLY)
        try:
            os.write(fd, lines.encode())
        finally:
            os.close(fd)

    def kill(self) -> None:
        """SIGKILL: a crash or a pulled plug."""
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        self.proc = None

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()
        self.proc = None


def read_outbox(path: Path) -> list[tuple[int, str, TapEvent]]:
    """(seq, status, event) of every event in an outbox, read through its own connection; none
    before the kiosk process has made its outbox (a slow start on a loaded machine)."""
    if not path.exists():
        return []
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
    try:
        rows = conn.execute("SELECT seq, status, payload FROM events ORDER BY seq").fetchall()
    except sqlite3.OperationalError as exc:
        if "no such table" not in str(exc):
            raise
        rows = []  # a kiosk that has just created the file and not yet its schema
    finally:
        conn.close()
    return [(int(s), str(st), TapEvent.model_validate_json(p)) for s, st, p in rows]


def outbox_last_seq(path: Path) -> int:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
    try:
        row = conn.execute("SELECT value FROM state WHERE key='last_seq'").fetchone()
    finally:
        conn.close()
    return int(row[0]) if row else 0


def missing_seqs(stored: set[int], committed: set[int]) -> list[int]:
    """Committed seqs not in InfluxDB: what a scenario that must re-send (broker crash) sends."""
    return sorted(committed - stored)
