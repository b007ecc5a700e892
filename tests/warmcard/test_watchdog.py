"""The systemd notify helper, against a real AF_UNIX datagram socket standing in for systemd."""

from __future__ import annotations

import os
import socket
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from warmcard.watchdog import Watchdog


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def systemd(monkeypatch: pytest.MonkeyPatch) -> Iterator[socket.socket]:
    """A bound datagram socket, exported as NOTIFY_SOCKET, as systemd does for Type=notify."""
    # AF_UNIX paths are limited to 108 bytes; pytest's tmp_path can be longer.
    folder = Path(tempfile.mkdtemp(prefix="wc-notify-"))
    path = folder / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(1.0)
    monkeypatch.setenv("NOTIFY_SOCKET", str(path))
    monkeypatch.delenv("WATCHDOG_USEC", raising=False)
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    yield sock
    sock.close()
    path.unlink()
    folder.rmdir()


def received(sock: socket.socket, wait_s: float = 0.0) -> list[str]:
    """Every datagram waiting now, or arriving within wait_s."""
    messages = []
    deadline = time.monotonic() + wait_s
    sock.setblocking(False)
    try:
        while True:
            try:
                messages.append(sock.recv(4096).decode())
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    return messages
                time.sleep(0.01)
    finally:
        sock.settimeout(1.0)


def test_without_notify_socket_everything_is_a_no_op(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    clock = FakeClock()
    watchdog = Watchdog(watchdog_s=10, clock=clock)
    assert not watchdog.enabled
    watchdog.ready("running")
    watchdog.register("reader")
    assert watchdog.ping() is True
    clock.now += 11
    assert watchdog.ping() is False, "liveness is still tracked without systemd"
    watchdog.close()


def test_ready_and_status_reach_systemd(systemd: socket.socket) -> None:
    watchdog = Watchdog()
    assert watchdog.enabled
    watchdog.ready("签到中 checking in")
    watchdog.status("离线 offline, 12 queued")
    assert systemd.recv(4096).decode() == "READY=1\nSTATUS=签到中 checking in"
    assert systemd.recv(4096).decode() == "STATUS=离线 offline, 12 queued"
    watchdog.close()
    assert systemd.recv(4096).decode() == "STOPPING=1"


def test_abstract_notify_socket(monkeypatch: pytest.MonkeyPatch) -> None:
    name = f"warmcard-test-{uuid.uuid4().hex}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + name)
        sock.settimeout(1.0)
        monkeypatch.setenv("NOTIFY_SOCKET", "@" + name)
        watchdog = Watchdog()
        watchdog.ready()
        assert sock.recv(4096) == b"READY=1"
        watchdog.close()


def test_pings_only_while_every_loop_is_fresh(systemd: socket.socket) -> None:
    clock = FakeClock()
    watchdog = Watchdog(watchdog_s=30, clock=clock)
    watchdog.register("reader")
    watchdog.register("uplink")
    assert watchdog.ping() is True
    assert received(systemd) == ["WATCHDOG=1"]

    clock.now += 20
    watchdog.beat("uplink")
    clock.now += 15  # reader silent for 35 s > 30 s; uplink beat 15 s ago
    assert watchdog.stale() == ["reader"]
    assert watchdog.ping() is False
    assert watchdog.ping() is False
    assert received(systemd) == ["STATUS=卡住 stalled: reader"], "status once, and no ping"

    watchdog.beat("reader")
    assert watchdog.ping() is True
    assert received(systemd) == ["STATUS=运行中 running", "WATCHDOG=1"]

    clock.now += 31
    watchdog.forget("reader")
    watchdog.forget("uplink")
    assert watchdog.ping() is True, "loops that ended on purpose do not hold pings back"
    watchdog.close()


def test_pinger_thread_stops_pinging_when_a_loop_hangs(
    systemd: socket.socket, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WATCHDOG_USEC", "300000")  # WatchdogSec=0.3 s: pings every 0.15 s
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))
    watchdog = Watchdog.from_environ()
    assert watchdog.watchdog_s == pytest.approx(0.3)
    assert watchdog.max_age_s == pytest.approx(0.3)
    hang = threading.Event()
    stop = threading.Event()

    def reader_loop() -> None:
        while not stop.is_set():
            if not hang.is_set():
                watchdog.beat("reader")
            time.sleep(0.02)

    watchdog.register("reader")
    loop = threading.Thread(target=reader_loop)
    loop.start()
    try:
        watchdog.start()
        alive = received(systemd, wait_s=0.5)
        assert alive.count("WATCHDOG=1") >= 2, alive
        hang.set()  # the reader thread is stuck in a driver call
        time.sleep(0.5)  # > max_age: the stale state is reached within this
        during = received(systemd)
        assert "STATUS=卡住 stalled: reader" in during, during
        after = received(systemd, wait_s=0.5)
        assert "WATCHDOG=1" not in after, "a hung loop must let systemd's watchdog fire"
        hang.clear()
        recovered = received(systemd, wait_s=0.4)
        assert "WATCHDOG=1" in recovered, recovered
    finally:
        stop.set()
        loop.join()
        watchdog.close()


def test_watchdog_of_another_process_is_not_ours(
    systemd: socket.socket, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WATCHDOG_USEC", "300000")
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid() + 1))
    watchdog = Watchdog.from_environ()
    assert watchdog.watchdog_s is None
    watchdog.start()  # no interval: no thread
    assert received(systemd, wait_s=0.3) == []
    watchdog.close()
