"""Console API latency at Dali's scale: 1,700 sites, 30 days of taps in a real InfluxDB.

    .venv/bin/python bench/overview_api.py [--sites 1700] [--sample 100] [--requests 200]

Writes today's taps for every site (about 60 check-ins, 60 check-outs and 100 meals at each
canteen) and 30 days of the same for a sample of sites, with batched line protocol. Then runs
the real `warmcard console` process (logins, live state rebuilt from InfluxDB) and measures,
over HTTP with a logged-in client in this process: /api/v1/overview (first page, a search, an
area), the site history, and a naive baseline in the same run that computes the overview by
querying InfluxDB per request.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from cloud_ingest.console import db as console_db
from cloud_ingest.console.roles import Role
from cloud_ingest.pipeline.influx import InfluxV1
from cloud_ingest.pipeline.settings import InfluxSettings
from cloud_ingest.registry import areas
from cloud_ingest.registry.importer import import_csv
from cloud_ingest.registry.store import Registry
from tests.support.console import add_user, logged_in
from warmcard.command.servers import Console, InfluxD, Mosquitto
from warmcard.localtime import day_window
from warmcard.timestamps import now_us

TZ = ZoneInfo("Asia/Shanghai")
DAY_US = 86_400_000_000
COUNTIES, TOWNSHIPS_PER_COUNTY = 12, 10


def site_ids(n: int) -> list[str]:
    return [f"site-{i:04d}" for i in range(n)]


def township_of(i: int) -> str:
    county = i % COUNTIES
    return f"dali/c{county:02d}/t{county:02d}-{(i // COUNTIES) % TOWNSHIPS_PER_COUNTY:02d}"


def write_registry_and_areas(folder: Path, sites: list[str]) -> None:
    (folder / "sites.csv").write_text(
        "site_id,name_zh,name_en,capacity\n"
        + "".join(f"{s},第{i}幸福小院,Courtyard {i},60\n" for i, s in enumerate(sites)),
        encoding="utf-8",
    )
    (folder / "devices.csv").write_text(
        "device_id,site_id,mode\n"
        + "".join(f"{s}-gate,{s},entrance\n{s}-canteen,{s},canteen\n" for s in sites),
        encoding="utf-8",
    )
    registry = Registry(folder / "registry.sqlite3")
    import_csv(registry, sites=folder / "sites.csv", devices=folder / "devices.csv")
    registry.close()
    rows = {"dali": "大理州,Dali"}
    for i, s in enumerate(sites):
        t = township_of(i)
        county = t.rpartition("/")[0]
        rows[county] = f"县{county[-2:]},County {county[-2:]}"
        rows[t] = f"乡镇{t[-5:]},Township {t[-5:]}"
        rows[f"{t}/{s}"] = f"第{i}幸福小院,Courtyard {i}"
    csv = folder / "areas.csv"
    csv.write_text(
        "path,name_zh,name_en\n" + "".join(f"{p},{v}\n" for p, v in rows.items()),
        encoding="utf-8",
    )
    console = console_db.open_store(folder / "console.sqlite3")
    with console.write() as conn:
        areas.import_areas_csv(conn, csv)
    console.close()


def day_lines(site: str, day_start_us: int, rng: random.Random, seq0: int) -> list[str]:
    """One day at one site: 60 people in (09:00) and out (16:00), 100 meals (11:30-12:30)."""
    lines = []
    seq = seq0
    for k in range(60):
        for kind, base_h in (("check_in", 9), ("check_out", 16)):
            seq += 1
            ts = day_start_us + base_h * 3_600_000_000 + rng.randrange(3_600_000_000)
            lines.append(
                f"taps,device={site}-gate,kind={kind},site={site} seq={seq}i,"
                f'event_id="e{site}{seq}",card_uid="04A1B2C3",person_id="p{k:03d}",'
                f"auto=false,clock_synced=true {ts}"
            )
    for k in range(100):
        seq += 1
        ts = day_start_us + int(11.5 * 3_600_000_000) + rng.randrange(3_600_000_000)
        kind = "meal_repeat" if k == 99 else "meal"
        lines.append(
            f"taps,device={site}-canteen,kind={kind},meal_period=lunch,site={site} seq={seq}i,"
            f'event_id="m{site}{seq}",card_uid="04A1B2C3",person_id="p{k % 80:03d}",'
            f"auto=false,clock_synced=true {ts}"
        )
    return lines


def fill_influx(storage: InfluxV1, sites: list[str], sample: list[str], now: int) -> int:
    _, today_start, _ = day_window(TZ, now)
    rng = random.Random(7)
    jobs: list[list[str]] = []
    batch: list[str] = []
    total = 0
    for site in sites:
        days = range(30) if site in sample else range(1)
        for d in days:
            start = today_start - d * DAY_US
            # Today only up to now: no taps from the future.
            lines = [ln for ln in day_lines(site, start, rng, 1000 * d) if int(ln[-16:]) < now]
            batch += lines
            total += len(lines)
            if len(batch) >= 20_000:
                jobs.append(batch)
                batch = []
    jobs.append(batch)
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(storage.write, jobs))
    return total


def measure(name: str, n: int, call: Callable[[int], Any]) -> dict[str, float]:
    times = []
    for i in range(n):
        t0 = time.perf_counter()
        call(i)
        times.append((time.perf_counter() - t0) * 1000)
    times.sort()
    p50 = statistics.median(times)
    p95 = times[max(0, int(len(times) * 0.95) - 1)]
    print(f"{name:<52} n={n:<4} p50 {p50:7.1f} ms   p95 {p95:7.1f} ms   max {times[-1]:7.1f} ms")
    return {"p50": p50, "p95": p95}


def naive_overview(storage: InfluxV1, now: int) -> list[dict[str, Any]]:
    """The baseline: today's counts per site straight from InfluxDB on every request."""
    _, start, end = day_window(TZ, now)
    series = storage.query(
        f'SELECT count("seq") FROM "taps" WHERE time >= {start}u AND time < {end}u '
        'GROUP BY "site", "kind"'
    )
    per: dict[str, dict[str, int]] = {}
    for s in series:
        per.setdefault(s.tags["site"], {})[s.tags["kind"]] = s.values[0][1]
    rows = [
        {"site_id": k, "present": v.get("check_in", 0) - v.get("check_out", 0), **v}
        for k, v in per.items()
    ]
    rows.sort(key=lambda r: str(r["site_id"]))
    return rows[:50]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sites", type=int, default=1700)
    ap.add_argument("--sample", type=int, default=100, help="sites with 30 days of history")
    ap.add_argument("--requests", type=int, default=200)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        with Mosquitto(tmp / "mosquitto") as broker, InfluxD(tmp / "influxd") as influx:
            sites = site_ids(args.sites)
            sample = random.Random(1).sample(sites, min(args.sample, len(sites)))
            t0 = time.perf_counter()
            write_registry_and_areas(tmp, sites)
            add_user(tmp / "console.sqlite3", "bench.admin", Role.ADMIN, "/")
            storage = InfluxV1(InfluxSettings(url=influx.url, database="bench"))
            storage.ensure_database()
            now = now_us()
            points = fill_influx(storage, sites, sample, now)
            print(
                f"{len(sites)} sites, {points} points ({len(sample)} sites with 30 days) "
                f"written and registered in {time.perf_counter() - t0:.1f} s"
            )
            # The console runs as its own process, as in production: a client in the same
            # interpreter as uvicorn would measure lock hand-offs (~45 ms a request), not the API.
            console = Console(
                tmp / "console",
                broker=broker,
                influx=influx,
                database="bench",
                registry_path=tmp / "registry.sqlite3",
                console_db=tmp / "console.sqlite3",
                extra_toml="live_resync_s = 3600",
            )
            t1 = time.perf_counter()
            with console, closing(logged_in(console.url, "bench.admin")) as client:
                # The console rebuilds live state from InfluxDB at start, before it answers
                # /healthz.
                print(f"console started, live state rebuilt in {time.perf_counter() - t1:.2f} s")
                first = client.get("/api/v1/overview").json()
                assert first["total"] == len(sites), first["total"]
                assert first["rollup"]["scope"]["arrivals"] > 0
                n = args.requests

                def get(path: str, **params: Any) -> Callable[[int], Any]:
                    def call(i: int) -> Any:
                        r = client.get(path, params=params)
                        r.raise_for_status()
                        return r

                    return call

                print(f"{datetime.now(TZ):%Y-%m-%d %H:%M} Asia/Shanghai; {n} requests each:")
                # The floor every request pays on this server (no login, no data): for scale.
                measure("GET /healthz (floor: no auth, no data)", n, get("/healthz"))
                measure("GET /api/v1/overview (page 1 of 1,700)", n, get("/api/v1/overview"))
                measure(
                    "GET /api/v1/overview?q=第1&sort=-present",
                    n,
                    get("/api/v1/overview", q="第1", sort="-present"),
                )
                measure(
                    "GET /api/v1/overview?area=<county>&page=2",
                    n,
                    get("/api/v1/overview", area="dali/c03", page=2),
                )
                measure(
                    "GET /api/v1/sites/{id}/history?days=30",
                    n,
                    lambda i: client.get(
                        f"/api/v1/sites/{sample[i % len(sample)]}/history", params={"days": 30}
                    ).raise_for_status(),
                )
                measure(
                    "GET /api/v1/sites/{id}/timeline (today)",
                    n,
                    lambda i: client.get(
                        f"/api/v1/sites/{sample[i % len(sample)]}/timeline"
                    ).raise_for_status(),
                )
                measure(
                    "baseline: overview from InfluxDB per request",
                    max(20, n // 10),
                    lambda i: naive_overview(storage, now),
                )
            storage.close()


if __name__ == "__main__":
    main()
