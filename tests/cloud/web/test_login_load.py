# mypy: allow-untyped-defs
"""What anonymous callers can cost the process that also consumes MQTT, measured on the real
`warmcard ingest` child process with production argon2 (RFC 9106: 64 MiB per check): its
resident memory and /healthz latency under 100 simultaneous logins from 100 addresses, and a
200 MiB body to /login. Figures are printed; run with -s to see them."""

from __future__ import annotations

import select
import socket
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import httpx
import pytest

from tests.support.console import console_db_for, login_csrf, simultaneous_logins
from tests.support.ingest import write_registry
from warmcard.command.servers import Console, InfluxD, Ingest, Mosquitto

MIB = 1024 * 1024
LOGINS = 100


@pytest.fixture
def cloud(
    tmp_path: Path, mosquitto: Mosquitto, influxd: InfluxD, influx_db: str, topic_prefix: str
) -> Iterator[tuple[Console, Ingest]]:
    """`warmcard console` and `warmcard ingest` as systemd runs them, on one registry."""
    console_db_for(tmp_path, write_registry(tmp_path, topic_prefix))
    # run_dir is tmp_path, so the registry and console database just written are the defaults.
    console = Console(tmp_path, broker=mosquitto, influx=influxd, database=influx_db)
    worker = Ingest(tmp_path, broker=mosquitto, influx=influxd, database=influx_db)
    worker.client_id = f"ingest-{topic_prefix}"
    worker.extra_toml = f'share_group = "g{topic_prefix}"'
    console.start(timeout=60)
    try:
        worker.start(timeout=60)
        try:
            yield console, worker
        finally:
            worker.stop()
    finally:
        console.stop()


def status_kib(pid: int, field: str) -> int:
    """VmRSS (resident now) or VmHWM (peak since start or the last reset) of `pid`, in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(f"{field} missing in /proc/{pid}/status")


def reset_peak(pid: int) -> None:
    """Make VmHWM start again from the current RSS (Linux: `5` to clear_refs)."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")


class HealthProbe:
    """Polls /healthz every 0.1 s in a thread; `worst` is the slowest answer, in seconds."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.times: list[float] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self) -> None:
        with httpx.Client(base_url=self.url, timeout=60) as client:
            while not self.stop.is_set():
                t0 = time.monotonic()
                assert client.get("/healthz").status_code == 200
                self.times.append(time.monotonic() - t0)
                self.stop.wait(0.1)

    def __enter__(self) -> HealthProbe:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(60)

    @property
    def worst(self) -> float:
        return max(self.times)


def test_simultaneous_logins_bound_memory_and_keep_healthz_fast(
    cloud: tuple[Console, Ingest],
) -> None:
    ingest, worker = cloud  # the logins go to the console; the worker is another process
    pid = ingest.proc.pid  # type: ignore[union-attr]
    # Warm up: the first check of an unknown name makes the dummy hash once.
    with httpx.Client(base_url=ingest.url, timeout=30) as warm:
        csrf = login_csrf(warm)
        r = warm.post("/login", json={"username": "warm-up", "password": "x" * 12},
                      headers={"X-CSRF-Token": csrf})  # fmt: skip
        assert r.status_code == 401
    base_kib = status_kib(pid, "VmRSS")
    reset_peak(pid)

    # 100 callers, each from its own loopback address and with its own username, so neither the
    # per-address nor the per-username limit stops them: only the bound on checks can.
    logins = [(f"spray-{i}", "wrong-password-1", f"127.0.1.{i + 1}") for i in range(LOGINS)]
    with HealthProbe(ingest.url) as probe, HealthProbe(worker.url) as worker_probe:
        time.sleep(0.3)
        t0 = time.monotonic()
        statuses = simultaneous_logins(ingest.url, logins)
        took = time.monotonic() - t0

    growth_mib = (status_kib(pid, "VmHWM") - base_kib) / 1024
    counts = Counter(statuses)
    print(
        f"\n{LOGINS} simultaneous logins: {dict(sorted(counts.items()))} in {took:.1f} s "
        "(their 100 GET /login included); "
        f"RSS {base_kib / 1024:.0f} MiB, peak +{growth_mib:.0f} MiB; "
        f"/healthz worst {probe.worst:.2f} s over {len(probe.times)} probes; "
        f"the worker's /healthz worst {worker_probe.worst:.2f} s"
    )
    assert len(statuses) == LOGINS and set(counts) <= {401, 429}
    assert counts[429] > 0  # beyond the running and waiting checks: refused at once
    assert counts[401] >= 2
    # Only the checked logins count as failures; those refused as too busy do not.
    with closing(sqlite3.connect(ingest.run_dir / "console.sqlite3")) as db:
        (counted,) = db.execute(
            "SELECT COUNT(*) FROM login_failures WHERE key LIKE 'user:spray-%'"
        ).fetchone()
    assert counted == counts[401]
    # Two checks at 64 MiB each, plus their threads; unbounded, this was 2.5 GB.
    assert growth_mib < 400
    assert probe.worst < 1.0
    assert worker_probe.worst < 1.0


def post_raw(port: int, path: str, head: str, body: Iterator[bytes]) -> int:
    """Send a request by hand and return its status; the body is sent only if the server has
    not answered within 1 s of the headers (a capped server answers at once, and sending into a
    closed connection would reset it before the answer is read)."""
    sock = socket.create_connection(("127.0.0.1", port))
    try:
        sock.sendall(f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{head}\r\n".encode())
        if not select.select([sock], [], [], 1.0)[0]:
            try:
                for chunk in body:
                    sock.sendall(chunk)
            except OSError:
                pass  # the server gave up on the body: its answer is waiting
        sock.settimeout(60)  # an uncapped server waits for the rest of a chunked body forever
        line = sock.makefile("rb").readline()
        return int(line.split()[1])
    finally:
        sock.close()


def test_large_bodies_are_refused_before_they_are_read(cloud: tuple[Console, Ingest]) -> None:
    ingest, _ = cloud
    pid = ingest.proc.pid  # type: ignore[union-attr]
    base_kib = status_kib(pid, "VmRSS")
    reset_peak(pid)
    form = "Content-Type: application/x-www-form-urlencoded\r\n"

    # A JSON login whose username is 200 MiB long: read whole, it was refused only by the CSRF
    # check after parsing.
    size = 200 * MIB
    opening, closing = b'{"username": "', b'"}'
    filler = size - len(opening) - len(closing)
    t0 = time.monotonic()
    declared = post_raw(
        ingest.port,
        "/login",
        f"Content-Type: application/json\r\nContent-Length: {size}\r\n",
        iter(
            [opening, *(b"a" * MIB for _ in range(filler // MIB)), b"a" * (filler % MIB), closing]
        ),
    )
    took = time.monotonic() - t0
    growth_mib = (status_kib(pid, "VmHWM") - base_kib) / 1024
    print(
        f"\n200 MiB body to /login: {declared} after {took:.2f} s; "
        f"RSS {base_kib / 1024:.0f} MiB, peak +{growth_mib:.0f} MiB"
    )
    assert declared == 413
    assert growth_mib < 20

    # No Content-Length: counted as it comes, refused at the first chunk past 64 KiB.
    chunk = b"a" * 48 * 1024
    chunked = post_raw(
        ingest.port,
        "/login",
        form + "Transfer-Encoding: chunked\r\n",
        iter([f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"] * 2),
    )
    assert chunked == 413
    # A login's real body is far below the cap, and the server still answers.
    with httpx.Client(base_url=ingest.url, timeout=10) as client:
        csrf = login_csrf(client)
        r = client.post("/login", json={"username": "li.wei", "password": "p" * 1024},
                        headers={"X-CSRF-Token": csrf})  # fmt: skip
        assert r.status_code == 401
