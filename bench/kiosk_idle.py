"""The whole kiosk process at idle: CPU while its reader polls, and its resident memory.

Runs the real `warmcard kiosk` (pn532 driver on the PN532 emulator's pseudo-terminal at
115200 baud, uplink to a real Mosquitto, on-site screen server on) and samples /proc. Baseline
in the same run: a bare Python interpreter that imports nothing and sleeps. Goals: CPU <= 2 %,
RSS <= 60 MB.

Run: .venv/bin/python bench/kiosk_idle.py [--seconds 20]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from firmware_gateway.pn532.emulator import PN532Emulator
from warmcard.command.servers import Mosquitto, free_port

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def measure(proc: subprocess.Popen[bytes], seconds: float) -> tuple[float, float]:
    """(CPU % of one core over `seconds`, RSS MiB at the end)."""
    start_cpu, start = cpu_s(proc.pid), time.monotonic()
    time.sleep(seconds)
    used = cpu_s(proc.pid) - start_cpu
    return 100 * used / (time.monotonic() - start), rss_mib(proc.pid)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory(prefix="warmcard-kiosk-idle-") as tmp,
        Mosquitto(Path(tmp) / "broker") as broker,
        PN532Emulator() as emulator,
    ):
        config = Path(tmp) / "kiosk.toml"
        config.write_text(
            f'device_id = "bench-kiosk"\nreader = "pn532:{emulator.path}"\n'
            f'data_dir = "{Path(tmp) / "data"}"\nscreen_port = {free_port()}\n'
            f"heartbeat_s = 30\n[mqtt]\nport = {broker.port}\n"
            '[initial_config]\ndevice_id = "bench-kiosk"\nsite_id = "bench-site"\n'
            'mode = "entrance"\n'
        )
        kiosk = subprocess.Popen(
            [sys.executable, "-m", "warmcard", "kiosk", "--config", str(config)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        bare = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(3600)"])
        try:
            time.sleep(5)  # start-up: imports, reader init, broker connect
            if kiosk.poll() is not None:
                raise RuntimeError(f"warmcard kiosk exited with {kiosk.returncode}")
            kiosk_cpu, kiosk_rss = measure(kiosk, args.seconds)
            bare_cpu, bare_rss = measure(bare, 1.0)
            polls = sum(1 for c in emulator.commands if c == 0x4A)  # InListPassiveTarget
        finally:
            for proc in (kiosk, bare):
                proc.terminate()
                proc.wait(10)
    print(f"idle kiosk over {args.seconds:.0f} s: CPU {kiosk_cpu:.2f} % (goal <= 2 %)")
    print(f"kiosk RSS: {kiosk_rss:.1f} MiB (goal <= 60 MB)")
    print(f"baseline, bare python sleeping: CPU {bare_cpu:.2f} %, RSS {bare_rss:.1f} MiB")
    print(f"kiosk RSS / bare python RSS: {kiosk_rss / bare_rss:.1f}x")
    print(f"reader polls (InListPassiveTarget) seen by the emulator: {polls}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
