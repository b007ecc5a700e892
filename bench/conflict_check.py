"""Cost of conflict detection on the ingest hot path: BatchProcessor.classify with and without the
seen index, interleaved batch by batch in one process (robust to a busy machine).

Run from the repository root:
    .venv/bin/python -m bench.conflict_check [--events 100000] [--batch 5000]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from bench.events import bench_event, bench_start_us
from cloud_ingest.pipeline.conflicts import SeenIndex
from cloud_ingest.pipeline.consumer import BatchProcessor, Incoming, Metrics
from cloud_ingest.pipeline.deadletter import DeadLetterStore
from cloud_ingest.pipeline.influx import InfluxV1
from cloud_ingest.pipeline.settings import InfluxSettings
from cloud_ingest.registry.store import Registry
from warmcard.command.demo import import_seed
from warmcard.contract import events_topic
from warmcard.timestamps import now_us

DEVICES = 4


def batches(total: int, size: int, prefix: str) -> list[list[Incoming]]:
    start = bench_start_us()
    msgs = []
    for i in range(total):
        device, seq = f"{prefix}-{i % DEVICES}", i // DEVICES + 1
        event = bench_event(device, seq, start + i * 10)
        msgs.append(Incoming(events_topic(device), event.to_bytes(), 1, False, i, 1, now_us()))
    return [msgs[i : i + size] for i in range(0, len(msgs), size)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=5000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="warmcard-bench-") as tmp:
        work = Path(tmp)
        (work / "sites.csv").write_text("site_id,name_zh\nbench-site,基准测试院\n")
        rows = "".join(f"{p}-{d},bench-site,entrance\n" for p in "ab" for d in range(DEVICES))
        (work / "devices.csv").write_text("device_id,site_id,mode\n" + rows)
        import_seed(
            work / "registry.sqlite3",
            {"sites": work / "sites.csv", "devices": work / "devices.csv"},
        )
        registry = Registry(work / "registry.sqlite3")
        letters = DeadLetterStore(work / "dl.sqlite3")
        storage = InfluxV1(InfluxSettings(url="http://127.0.0.1:9"))  # classify never writes
        seen = SeenIndex(work / "seen.sqlite3")
        plain = BatchProcessor(storage, letters, registry, None, Metrics())
        checked = BatchProcessor(storage, letters, registry, None, Metrics(), seen=seen)
        a, b = batches(args.events, args.batch, "a"), batches(args.events, args.batch, "b")
        t_plain = t_checked = 0.0
        for batch_a, batch_b in zip(a, b, strict=True):
            t0 = time.perf_counter()
            plain.classify(batch_a)
            t1 = time.perf_counter()
            lines = checked.classify(batch_b)[0]
            t2 = time.perf_counter()
            assert len(lines) == len(batch_b)
            t_plain += t1 - t0
            t_checked += t2 - t1
        # A redelivery of the last batch takes the slow path (every row looked up).
        t0 = time.perf_counter()
        lines = checked.classify(b[-1])[0]
        t_redeliver = time.perf_counter() - t0
        assert len(lines) == len(b[-1])
        seen.close()
        letters.close()
        registry.close()
        storage.close()
    n = args.events
    extra_us = (t_checked - t_plain) / n * 1e6
    print(f"events: {n} in batches of {args.batch}")
    print(f"classify without conflict check : {n / t_plain:10.0f} events/s")
    print(f"classify with conflict check    : {n / t_checked:10.0f} events/s")
    print(f"added per event                 : {extra_us:10.1f} µs")
    print(f"redelivered batch (slow path)   : {len(b[-1]) / t_redeliver:10.0f} events/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
