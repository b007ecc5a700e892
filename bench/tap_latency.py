"""Tap-to-feedback latency of the pn532: driver against the emulator at 115200 bd, plus idle cost.

Latency: from `emulator.present(uid)` to a gpiozero LED (MockFactory) turning on in the thread
that polls the driver, over N taps presented at random moments. Idle: process and driver-thread
CPU time over S seconds of polling with no card, and the process RSS (VmRSS / VmHWM).
The process also runs the emulator, so process CPU and RSS include it: an upper bound for the
driver alone. Goals: p99 ≤ 100 ms, idle CPU ≤ 2 %, RSS ≤ 60 MB.

    .venv/bin/python bench/tap_latency.py [--taps 200] [--idle 10]
"""

from __future__ import annotations

import argparse
import os
import queue
import random
import statistics
import threading
import time

os.environ.setdefault("GPIOZERO_PIN_FACTORY", "mock")

from gpiozero import LED

from firmware_gateway.pn532.emulator import PN532Emulator
from firmware_gateway.readers.pn532 import PN532Reader

UID = "04A1B2C3"


def rss_kib() -> tuple[int, int]:
    fields = {}
    with open("/proc/self/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            fields[key] = value.strip()
    return int(fields["VmRSS"].split()[0]), int(fields["VmHWM"].split()[0])


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--taps", type=int, default=200)
    ap.add_argument("--idle", type=float, default=10.0, help="seconds of idle polling to measure")
    ap.add_argument("--baud", type=int, default=115200)
    args = ap.parse_args()

    led = LED(17)
    lit: queue.Queue[float] = queue.Queue()
    stop = threading.Event()
    thread_cpu: dict[str, float] = {}
    measure_idle = threading.Event()
    idle_done = threading.Event()

    with PN532Emulator(baudrate=args.baud) as emu:
        reader = PN532Reader(f"pn532:{emu.path}")

        def drive() -> None:
            # What the kiosk does: poll, and light the LED the moment a UID comes back.
            while not stop.is_set():
                if measure_idle.is_set() and "start" not in thread_cpu:
                    thread_cpu["start"], thread_cpu["wall0"] = time.thread_time(), time.monotonic()
                if idle_done.is_set() and "end" not in thread_cpu:
                    thread_cpu["end"], thread_cpu["wall1"] = time.thread_time(), time.monotonic()
                uid = reader.poll(0.5)
                if uid is not None:
                    led.on()
                    lit.put(time.perf_counter())

        worker = threading.Thread(target=drive, name="driver", daemon=True)
        worker.start()
        while reader.state.value != "ok":
            time.sleep(0.01)

        latencies: list[float] = []
        missed = 0
        for _ in range(args.taps):
            time.sleep(random.uniform(0.02, 0.3))  # random phase against the polling window
            t0 = time.perf_counter()
            emu.present(UID)
            try:
                latencies.append(lit.get(timeout=2.0) - t0)
            except queue.Empty:
                missed += 1
            led.off()
            emu.remove()
            end = time.monotonic() + 3
            while reader.held is not None and time.monotonic() < end:
                time.sleep(0.01)

        time.sleep(1.0)  # let the driver settle into idle polling
        rss_before, _ = rss_kib()
        measure_idle.set()
        p0, w0 = time.process_time(), time.monotonic()
        time.sleep(args.idle)
        p1, w1 = time.process_time(), time.monotonic()
        idle_done.set()
        while "end" not in thread_cpu:
            time.sleep(0.05)
        stop.set()
        worker.join(2)
        rss, hwm = rss_kib()
        reader.close()

    ms = [x * 1000 for x in latencies]
    print(f"taps: {len(latencies)} detected, {missed} missed, baud {args.baud}")
    print(
        f"tap → LED latency ms: p50 {statistics.median(ms):.2f}  p99 {percentile(ms, 99):.2f}  "
        f"max {max(ms):.2f}  min {min(ms):.2f}"
    )
    wall = w1 - w0
    thread_wall = thread_cpu["wall1"] - thread_cpu["wall0"]
    print(
        f"idle CPU over {wall:.1f} s: process {100 * (p1 - p0) / wall:.2f} % "
        f"(driver + emulator), driver thread "
        f"{100 * (thread_cpu['end'] - thread_cpu['start']) / thread_wall:.2f} % "
        f"over {thread_wall:.1f} s"
    )
    print(
        f"RSS: {rss_before / 1024:.1f} MiB at idle, {rss / 1024:.1f} MiB at end, "
        f"peak {hwm / 1024:.1f} MiB"
    )


if __name__ == "__main__":
    main()
