"""Time the monthly report for one township: N sites, a month of meals and check-ins.

    .venv/bin/python bench/report_month.py [--sites 10] [--meals 100] [--checkins 60]

Starts its own InfluxDB (Debian's influxd) in a temporary directory and prints figures.
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from pathlib import Path

from cloud_ingest.console.reports import monthly_report
from cloud_ingest.pipeline.influx import InfluxV1
from cloud_ingest.pipeline.lineprotocol import encode_tap
from cloud_ingest.pipeline.settings import InfluxSettings
from cloud_ingest.registry.store import Site
from warmcard.command.servers import InfluxD
from warmcard.contract import Kind, MealPeriod, TapEvent
from warmcard.timestamps import format_ts, new_event_id

START_US = 1_793_462_400_000_000  # 2026-11-01 00:00 Asia/Shanghai


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sites", type=int, default=10)
    ap.add_argument("--meals", type=int, default=100, help="meals per canteen per day")
    ap.add_argument("--checkins", type=int, default=60, help="check-ins per site per day")
    args = ap.parse_args()
    rng = random.Random(1)
    with InfluxD(Path(tempfile.mkdtemp()) / "influxd") as server:
        storage = InfluxV1(InfluxSettings(url=server.url, database="bench"))
        storage.ensure_database()
        sites = []
        lines: list[str] = []
        for s in range(args.sites):
            site = f"xizhou-{s:02d}"
            sites.append(Site(site, f"小院{s}", "", "Asia/Shanghai", 40, "07:00", "18:00", ()))
            for device, kind, per_day in (
                (f"{site}-canteen", Kind.MEAL, args.meals),
                (f"{site}-gate", Kind.CHECK_IN, args.checkins),
            ):
                seq = 0
                for day in range(30):
                    base = START_US + day * 86_400_000_000 + 8 * 3_600_000_000
                    for i in range(per_day):
                        seq += 1
                        ts = base + i * 60_000_000
                        meal = MealPeriod.LUNCH if kind is Kind.MEAL else None
                        event = TapEvent(
                            event_id=new_event_id(ts),
                            device_id=device,
                            seq=seq,
                            ts=format_ts(ts),
                            card_uid="04A1B2C3",
                            kind=kind,
                            meal_period=meal,
                            person_id=f"P{s:02d}{rng.randrange(120):04d}",
                        )
                        lines.append(encode_tap(event, site, ts))
        t0 = time.perf_counter()
        for i in range(0, len(lines), 5000):
            storage.write(lines[i : i + 5000])
        write_s = time.perf_counter() - t0
        timings = []
        for _ in range(5):
            report = monthly_report(storage, sites, "dali/dalishi/xizhou", "2026-11")
            timings.append(report.generated_s)
        storage.close()
    print(f"points written: {len(lines)} in {write_s:.2f} s")
    print(
        f"sites: {args.sites}, meals: {report.meals_total}, distinct elders: {report.elders_served}"
    )
    print("report generation (s), 5 runs: " + ", ".join(f"{t:.3f}" for t in timings))


if __name__ == "__main__":
    main()
