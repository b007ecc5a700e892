"""Ingest throughput: QoS 1 publish → InfluxDB-acknowledged, against two baselines in the same run.

Figures printed:
  raw     Mosquitto's own QoS 1 drain: mosquitto_pub into mosquitto_sub (the ceiling of the broker).
  naive   a consumer that writes each message to InfluxDB on its own, then acks it.
  ingest  Warmcard's ingest service: batched writes, acks after InfluxDB accepted the batch.
          Also its events per ingest CPU-second (user+sys of the worker processes over the
          measured window, from /proc), the figure that does not move with other load.
  workers the same with `--workers` processes on the shared subscription, against one.

Run from the repository root:
    .venv/bin/python -m bench.ingest_throughput [--events 100000] [--naive-events 2000] \
        [--workers 2] [--py-spy OUT]

`--py-spy OUT` samples the one-worker run with py-spy (it must be on PATH) into OUT, in its
"raw" (collapsed stacks) format.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import httpx
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from bench.events import bench_event, bench_start_us
from warmcard.command.demo import import_seed
from warmcard.command.servers import InfluxD, Ingest, Mosquitto
from warmcard.contract import EVENTS_FILTER, events_topic, parse_event

PUBLISHERS = 4
SEED_FILES = ("sites", "devices", "people", "cards")


def write_event_files(workdir: Path, total: int, prefix: str) -> list[tuple[str, Path]]:
    """One file of JSON lines per simulated device, for mosquitto_pub -l."""
    per_device = total // PUBLISHERS
    start = bench_start_us()
    files = []
    for d in range(PUBLISHERS):
        device = f"{prefix}-{d}"
        path = workdir / f"{device}.jsonl"
        with path.open("w") as out:
            for seq in range(1, per_device + 1):
                event = bench_event(device, seq, start + seq * 10)
                out.write(event.to_bytes().decode() + "\n")
        files.append((device, path))
    return files


def publish_all(port: int, files: list[tuple[str, Path]]) -> None:
    """QoS 1 publishes from one mosquitto_pub per device, in parallel."""
    procs = [
        subprocess.Popen(
            [
                "mosquitto_pub",
                "-p",
                str(port),
                "-V",
                "mqttv5",
                "-q",
                "1",
                "-l",
                "-i",
                f"bench-pub-{device}",
                "-t",
                events_topic(device),
            ],
            stdin=path.open("rb"),
        )
        for device, path in files
    ]
    for proc in procs:
        if proc.wait() != 0:
            raise RuntimeError("mosquitto_pub failed")


def measure_raw(broker: Mosquitto, files: list[tuple[str, Path]], total: int) -> float:
    sub = subprocess.Popen(
        [
            "mosquitto_sub",
            "-p",
            str(broker.port),
            "-V",
            "mqttv5",
            "-q",
            "1",
            "-C",
            str(total),
            "-t",
            EVENTS_FILTER,
        ],
        stdout=subprocess.DEVNULL,
    )
    time.sleep(0.5)  # let the subscription settle before the clock starts
    start = time.perf_counter()
    publish_all(broker.port, files)
    sub.wait()
    return total / (time.perf_counter() - start)


def measure_naive(broker: Mosquitto, influx: InfluxD, files: list[tuple[str, Path]]) -> float:
    """Each message: parse, one HTTP write of one point, then ack."""
    db = "bench_naive"
    httpx.post(f"{influx.url}/query", data={"q": f"CREATE DATABASE {db}"}).raise_for_status()
    total = sum(1 for _, path in files for _ in path.open())
    done = threading.Event()
    received = 0
    http = httpx.Client(base_url=influx.url)

    def on_message(client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        nonlocal received
        event = parse_event(bytes(msg.payload), msg.topic)
        line = (
            f"taps,device={event.device_id},kind={event.kind.value} "
            f'seq={event.seq}i,event_id="{event.event_id}" {event.ts_us}'
        )
        http.post("/write", params={"db": db, "precision": "u"}, content=line).raise_for_status()
        client.ack(msg.mid, msg.qos)
        received += 1
        if received >= total:
            done.set()

    client = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id="bench-naive",
        protocol=mqtt.MQTTv5,
        manual_ack=True,
    )
    client.on_message = on_message
    client.connect("127.0.0.1", broker.port)
    client.subscribe(EVENTS_FILTER, qos=1)
    client.loop_start()
    time.sleep(0.5)
    start = time.perf_counter()
    publish_all(broker.port, files)
    done.wait(timeout=600)
    elapsed = time.perf_counter() - start
    client.loop_stop()
    client.disconnect()
    return received / elapsed


def influx_count(influx: InfluxD, db: str) -> int:
    resp = httpx.post(f"{influx.url}/query", data={"db": db, "q": "SELECT count(seq) FROM taps"})
    series = resp.json()["results"][0].get("series")
    return int(series[0]["values"][0][1]) if series else 0


def seed_registry(workdir: Path, files: list[tuple[str, Path]], per_device: int) -> Path:
    """One site holding every benchmark device, and the people and cards the events name, so
    ingest's registry check (card -> person -> site) takes its ordinary, matching path."""
    seed = workdir / "seed"
    seed.mkdir(exist_ok=True)
    (seed / "sites.csv").write_text("site_id,name_zh\nbench-site,基准测试院\n")
    (seed / "devices.csv").write_text(
        "device_id,site_id,mode\n" + "".join(f"{d},bench-site,entrance\n" for d, _ in files)
    )
    people = {bench_event("seed", seq, 0).person_id for seq in range(1, per_device + 1)}
    (seed / "people.csv").write_text(
        "person_id,display_name,site_id\n" + "".join(f"{p},长者,bench-site\n" for p in people)
    )
    cards = [bench_event("seed", seq, 0) for seq in range(1, per_device + 1)]
    (seed / "cards.csv").write_text(
        "card_uid,person_id,active\n" + "".join(f"{e.card_uid},{e.person_id},1\n" for e in cards)
    )
    registry = workdir / "registry.sqlite3"
    import_seed(registry, {name: seed / f"{name}.csv" for name in SEED_FILES})
    return registry


_CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User+sys CPU time of one process so far (its threads included), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _CLK_TCK  # utime, stime (fields 14, 15)


@dataclass(frozen=True)
class IngestRun:
    events: int
    elapsed_s: float
    cpu_s: float  # of every worker process, over the measured window

    @property
    def rate(self) -> float:
        return self.events / self.elapsed_s

    @property
    def per_cpu_s(self) -> float:
        return self.events / self.cpu_s


def measure_ingest(
    broker: Mosquitto,
    influx: InfluxD,
    files: list[tuple[str, Path]],
    total: int,
    workdir: Path,
    workers: int = 1,
    py_spy: Path | None = None,
) -> IngestRun:
    """`workers` ingest processes on the shared subscription, each with its own client id."""
    db = f"bench_ingest_{workers}"
    registry = seed_registry(workdir, files, total // PUBLISHERS)
    with ExitStack() as stack:
        procs = [
            stack.enter_context(
                Ingest(
                    workdir / f"ingest-{workers}-{n}",
                    broker=broker,
                    influx=influx,
                    database=db,
                    client_id=f"bench-ingest-{workers}-{n}",
                    registry_path=registry,
                    # A group of its own: the previous measurement's stopped worker keeps its
                    # persistent session, and the broker keeps queueing its share to it.
                    extra_toml=f'share_group = "bench{workers}"',
                )
            )
            for n in range(workers)
        ]
        pids = [ingest.proc.pid for ingest in procs if ingest.proc is not None]
        spy = (
            subprocess.Popen(
                [
                    "py-spy",
                    "record",
                    "--rate",
                    "250",
                    "--pid",
                    str(pids[0]),
                    "--format",
                    "raw",
                    "-o",
                    str(py_spy),
                ]
            )
            if py_spy is not None
            else None
        )
        cpu_before = sum(cpu_seconds(pid) for pid in pids)
        start = time.perf_counter()
        publish_all(broker.port, files)
        deadline = time.monotonic() + 600
        while influx_count(influx, db) < total and time.monotonic() < deadline:
            time.sleep(0.05)
        elapsed = time.perf_counter() - start
        cpu = sum(cpu_seconds(pid) for pid in pids) - cpu_before
        stored = influx_count(influx, db)
        if spy is not None:
            spy.send_signal(signal.SIGINT)  # py-spy writes its file when interrupted
            spy.wait()
    if stored != total:
        raise RuntimeError(f"ingest stored {stored} of {total} events")
    return IngestRun(total, elapsed, cpu)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--naive-events", type=int, default=2_000)
    parser.add_argument(
        "--workers", type=int, default=2, help="also measure this many ingest workers (1: don't)"
    )
    parser.add_argument("--py-spy", type=Path, help="profile the one-worker run into this file")
    args = parser.parse_args()
    total = args.events - args.events % PUBLISHERS
    naive_total = args.naive_events - args.naive_events % PUBLISHERS

    with tempfile.TemporaryDirectory(prefix="warmcard-bench-") as tmp:
        workdir = Path(tmp)
        files = write_event_files(workdir, total, "bench")
        (workdir / "naive").mkdir()
        naive_files = write_event_files(workdir / "naive", naive_total, "naive")
        with Mosquitto(workdir / "mosquitto") as broker, InfluxD(workdir / "influxd") as influx:
            raw = measure_raw(broker, files, total)
            naive = measure_naive(broker, influx, naive_files)
            ingest = measure_ingest(broker, influx, files, total, workdir, py_spy=args.py_spy)
            scaled = (
                measure_ingest(broker, influx, files, total, workdir, args.workers)
                if args.workers > 1
                else None
            )

    print(f"machine: {os.cpu_count()} cores, python {sys.version.split()[0]}")
    print(f"events: {total} (ingest, raw), {naive_total} (naive)")
    print(f"raw mosquitto QoS1 drain   : {raw:10.0f} events/s")
    print(f"naive write-per-message    : {naive:10.0f} events/s")
    print(f"warmcard ingest            : {ingest.rate:10.0f} events/s")
    print(f"ingest CPU (user+sys)      : {ingest.cpu_s:10.2f} s")
    print(f"ingest per CPU-second      : {ingest.per_cpu_s:10.0f} events/CPU-s")
    print(f"ingest / raw               : {ingest.rate / raw:10.2f}")
    print(f"ingest / naive             : {ingest.rate / naive:10.1f}x")
    if scaled is not None:
        n = args.workers
        print(f"ingest, {n} workers (shared sub): {scaled.rate:10.0f} events/s")
        print(f"{n} workers per CPU-second  : {scaled.per_cpu_s:10.0f} events/CPU-s")
        print(f"{n} workers / 1 worker       : {scaled.rate / ingest.rate:10.2f}")
        print(f"{n} workers / raw            : {scaled.rate / raw:10.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
