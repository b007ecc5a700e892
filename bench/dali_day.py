"""A Dali-scale day on the whole stack: do the console's figures come out right, in time, and
at what cost?

    .venv/bin/python -m bench.dali_day [--minutes 10] [--scale 1.0] [--seed 2026]

A registry of 1,663 sites (12 counties, 108 townships), 3,300 kiosks, 22,000 people and cards
and the flags of elders living alone (bench/dali_seed.py), imported through the product's
CSV import, area import and flags reader. Real Mosquitto, InfluxDB, `warmcard ingest` and
`warmcard console` processes. The day (07:00-18:00 site time) is played in `--minutes` of wall
time by a few publisher processes carrying the kiosks (bench/dali_kiosks.py), while the bench
watches the console as its users do (bench/dali_probes.py). It prints the seed's figures beside
the console's, and each timing beside its goal. docs/benchmarks.md, "A Dali-scale day".
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from contextlib import ExitStack, closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from bench.dali_kiosks import DayClock, Message, messages, start_publishers
from bench.dali_probes import Figures, Probes, cpu_seconds, percentile, wait_until
from bench.dali_seed import OFFLINE_COUNTY, Scale, Seed, make_seed, write_csvs
from cloud_ingest.alerts.settings import AlertSettings
from cloud_ingest.alerts.store import AlertStore
from cloud_ingest.alerts.wellbeing import read_flags_csv
from cloud_ingest.console import db as console_db
from cloud_ingest.console.roles import Role
from cloud_ingest.pipeline.influx import InfluxV1
from cloud_ingest.pipeline.settings import InfluxSettings
from cloud_ingest.registry import areas
from cloud_ingest.registry.store import Registry
from tests.support.console import add_user, logged_in
from warmcard.command.demo import import_seed
from warmcard.command.servers import Console, InfluxD, Ingest, Mosquitto
from warmcard.timestamps import now_us

ADMIN, VIEWER = "dali.admin", "township.viewer"
TOKEN = "dali-bench-metrics-token"
DAY_US = 86_400_000_000
FULL = Scale()
CURVE_HOURS = (8.0, 10.0, 12.0, 14.0, 16.0, 17.5)
GOALS = {"tap_ms": 1000.0, "overview_ms": 100.0, "drain": 2000.0, "cpu": 0.5}


@dataclass
class Result:
    seed: Seed
    clock: DayClock
    published: int = 0
    stored_by_kind: dict[str, int] = field(default_factory=dict)
    rows: dict[str, dict[str, Any]] = field(default_factory=dict)  # console's overview rows
    visits_due: set[str] = field(default_factory=set)  # the admin's visits-due list
    visits_due_open: int = 0  # open visit-due alerts, /api/v1/alerts/counts
    fig: Figures = field(default_factory=Figures)
    drain: tuple[int, float] | None = None  # backlog events, seconds to acknowledge them all
    cpu: dict[str, float] = field(default_factory=dict)  # process -> CPU seconds over the day
    evaluate_s: float = AlertSettings().evaluate_s
    peak_rate: float = 0.0
    probe_sites: list[str] = field(default_factory=list)
    load: tuple[float, float, float] = (0.0, 0.0, 0.0)  # the machine's, when the day ended

    def meals_equal(self) -> tuple[int, int]:
        want = self.seed.meals_per_site()
        same = sum(self.rows.get(s, {}).get("meals_total") == n for s, n in want.items())
        return same, len(want)

    def arrivals_equal(self) -> tuple[int, int]:
        want = self.seed.arrivals_per_site()
        return sum(self.rows.get(s, {}).get("arrivals") == n for s, n in want.items()), len(want)

    @property
    def drain_rate(self) -> float:
        return self.drain[0] / self.drain[1] if self.drain and self.drain[1] > 0 else 0.0

    def cpu_per_1000(self, process: str = "ingest") -> float:
        return self.cpu.get(process, 0.0) / (self.published / 1000) if self.published else 0.0


def scaled(scale: float) -> Scale:
    return Scale(
        sites=max(12, round(FULL.sites * scale)),
        kiosks=max(24, round(FULL.kiosks * scale)),
        people=max(120, round(FULL.people * scale)),
        large=max(1, round(FULL.large * scale)),
    )


def probe_township(seed: Seed) -> str:
    """The township outside the offline county with the most flagged elders who come today."""
    flagged = seed.lives_alone & seed.attending
    count: Counter[str] = Counter()
    for s in seed.sites:
        if s.county != OFFLINE_COUNTY and s.canteen:
            count[s.township] += len(flagged & set(s.elders)) + 1
    return count.most_common(1)[0][0]


def prepare(tmp: Path, seed: Seed, clock: DayClock, township: str, margin_s: float) -> None:
    """Registry, areas, flags and the two users, through the product's own import paths."""
    csvs = write_csvs(tmp / "seed", seed, clock.site_hours(margin_s=margin_s))
    import_seed(tmp / "registry.sqlite3", csvs)
    console = console_db.open_store(tmp / "console.sqlite3")
    try:
        with console.write() as conn:
            areas.import_areas_csv(conn, csvs["areas"])
    finally:
        console.close()
    registry = Registry(tmp / "registry.sqlite3")
    try:
        rows = read_flags_csv(csvs["flags"], AlertSettings().flags, registry)
    finally:
        registry.close()
    store = AlertStore.open(tmp / "alerts.sqlite3")
    try:  # as `warmcard flags import` three days ago: the grace has passed, visits are due
        store.set_flags(rows, now_us() - 3 * DAY_US)
    finally:
        store.close()
    add_user(tmp / "console.sqlite3", ADMIN, Role.ADMIN, "dali")
    add_user(tmp / "console.sqlite3", VIEWER, Role.VIEWER, township)


def _health(url: str) -> dict[str, Any]:
    r = httpx.get(f"{url}/healthz", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=5)
    return dict(r.json())


def _overview_rows(url: str) -> dict[str, dict[str, Any]]:
    rows: dict[str, dict[str, Any]] = {}
    with closing(logged_in(url, ADMIN)) as admin:
        page, pages = 1, 1
        while page <= pages:
            r = admin.get("/api/v1/overview", params={"page": page, "page_size": 200})
            r.raise_for_status()
            doc = r.json()
            rows.update({row["site_id"]: row for row in doc["sites"]})
            page, pages = page + 1, doc["pages"]
    return rows


def _due(url: str) -> tuple[int, set[str]]:
    """Open visit-due alerts (the count), and who is on the admin's visits-due list."""
    with closing(logged_in(url, ADMIN)) as admin:
        counts = admin.get("/api/v1/alerts/counts")
        counts.raise_for_status()
        r = admin.get("/api/v1/visits/due")
        r.raise_for_status()
        return counts.json()["by_group"]["wellbeing"], {d["person_id"] for d in r.json()["due"]}


def _peak_rate(msgs: list[Message], window_s: float = 5.0) -> float:
    times = [m.send_at for m in msgs if not m.backlog]
    best, j = 0, 0
    for i, t in enumerate(times):
        while times[j] < t - window_s:
            j += 1
        best = max(best, i - j + 1)
    return best / window_s


def run(minutes: float, scale: float, seed_n: int, publishers: int, log: Any = print) -> Result:
    seed = make_seed(scaled(scale), seed_n)
    township = probe_township(seed)
    lead = 20 + 60 * scale  # setup time: the registry, servers and console start first
    clock = DayClock(time.time() + lead, minutes)
    result = Result(seed, clock)
    with tempfile.TemporaryDirectory(prefix="warmcard-dali-") as tmp_name, ExitStack() as stack:
        tmp = Path(tmp_name)
        broker = stack.enter_context(Mosquitto(tmp / "mosquitto"))
        influx = stack.enter_context(InfluxD(tmp / "influxd"))
        prepare(tmp, seed, clock, township, margin_s=lead + 120)
        # Rules in site time: a canteen's lunch rush is not a "burst" because the day is short.
        extra = f"[alerts]\nburst_seconds = {30 / clock.speedup:.3f}"
        roles = [
            role(
                tmp / role.name,
                broker=broker,
                influx=influx,
                registry_path=tmp / "registry.sqlite3",
                console_db=tmp / "console.sqlite3",
                deadletter_path=tmp / "deadletter.sqlite3",
                metrics_token=TOKEN,
                extra_toml=extra,
            )
            for role in (Ingest, Console)
        ]
        ingest, console = (stack.enter_context(r) for r in roles)
        flagged = len(seed.lives_alone)
        wait_until(lambda: _due(console.url)[0] >= flagged, 60, every=1.0)
        log(f"set up in {time.time() - (clock.t0 - lead):.1f} s: {len(seed.sites)} sites, "
            f"{flagged} flagged elders due a visit at the start")  # fmt: skip
        # The day starts now; the sites' opening hours were set with `lead` to spare either way.
        clock = result.clock = DayClock(time.time() + 3, minutes)
        msgs = messages(seed.taps, clock)
        result.peak_rate = _peak_rate(msgs)
        probe_sites = {s.site_id for s in seed.sites if s.township == township}
        result.probe_sites = sorted(probe_sites)
        on_probe = [m.topic.split("/")[3].rsplit("-", 1)[0] in probe_sites for m in msgs]
        probes = Probes(
            console.url,
            broker.port,
            ADMIN,
            VIEWER,
            township,
            [m for m, p in zip(msgs, on_probe, strict=True) if p],
            seed.lives_alone,
        )
        pids = {"ingest": ingest, "console": console, "mosquitto": broker, "influxd": influx}
        cpu0 = {k: cpu_seconds(s.proc.pid) for k, s in pids.items() if s.proc}
        probes.start()
        procs, counters, drains, bursts = start_publishers(
            broker.port, [m for m, p in zip(msgs, on_probe, strict=True) if not p], publishers
        )
        drain_thread = threading.Thread(
            target=_watch_drain, args=(result, ingest.url, drains, bursts, counters, probes)
        )
        drain_thread.start()
        log(f"day started: {len(msgs)} messages over {minutes} min")
        for p in procs:
            p.join()
        fig = probes.stop()
        result.load = os.getloadavg()
        drain_thread.join(120)
        result.published = sum(c.value for c in counters) + fig.probe_published
        done = wait_until(
            lambda: _health(ingest.url)["metrics"]["acked"] >= result.published, 300, every=0.1
        )
        worker_taps = _health(ingest.url)["published_taps"]
        wait_until(lambda: _health(console.url)["stored_taps"] >= worker_taps, 60, every=0.1)
        result.cpu = {k: cpu_seconds(s.proc.pid) - cpu0[k] for k, s in pids.items() if s.proc}
        log(f"day over; every message acknowledged: {done is not None}")
        want_due = seed.visits_due()
        wait_until(lambda: _due(console.url)[0] == len(want_due), result.evaluate_s + 15, every=1)
        result.visits_due_open, result.visits_due = _due(console.url)
        result.rows = _overview_rows(console.url)
        result.fig = fig
        storage = InfluxV1(InfluxSettings(url=influx.url, database=ingest.database))
        since = int(clock.t0 * 1e6) - 10 * 60_000_000
        series = storage.query(
            f'SELECT count("seq") FROM "taps" WHERE time >= {since}u GROUP BY "kind"'
        )
        result.stored_by_kind = {s.tags["kind"]: s.values[0][1] for s in series}
        storage.close()
    return result


def _watch_drain(
    result: Result, worker_url: str, drains: Any, bursts: int, counters: list[Any], probes: Probes
) -> None:
    """The held backlog: from the first publish of a burst until the worker acked it all."""
    if not bursts:
        return
    reports = [drains.get(timeout=3600) for _ in range(bursts)]
    target = sum(c.value for c in counters) + probes.fig.probe_published
    done = wait_until(lambda: _health(worker_url)["metrics"]["acked"] >= target, 120)
    if done is not None:
        result.drain = (sum(r[3] for r in reports), done - min(r[1] for r in reports))


def report(r: Result) -> list[tuple[str, bool]]:
    """Print the figures; returns (check, met) for every seed comparison and goal."""
    seed, fig, checks = r.seed, r.fig, []

    def line(name: str, value: str, goal: str, met: bool | None = None) -> None:
        mark = "" if met is None else ("met" if met else "NOT MET")
        print(f"  {name:<44} {value:<34} {goal:<22} {mark}")
        if met is not None:
            checks.append((name, met))

    kinds = seed.kinds()
    print(f"Dali-scale day, seed {len(seed.sites)} sites, {sum(1 for _ in _devices(seed))} kiosks, "
          f"{len(seed.cards)} people and cards, {len(seed.lives_alone)} flagged lives alone; "
          f"day 07:00-18:00 in {r.clock.minutes:g} min (x{r.clock.speedup:.0f})")  # fmt: skip
    print(f"machine: {os.cpu_count()} cores, load average {r.load[0]:.1f} / {r.load[1]:.1f} / "
          f"{r.load[2]:.1f} as the day ended")  # fmt: skip
    print("Figures: console (or InfluxDB) against the seed")
    for kind in ("check_in", "check_out", "meal", "meal_repeat", "unknown_card"):
        got = r.stored_by_kind.get(kind, 0)
        line(f"stored once, {kind}", f"{got}", f"seed {kinds[kind]}", got == kinds[kind])
    dupes = sum(t.duplicate for t in seed.taps)
    line("messages published (incl. QoS 1 repeats)", f"{r.published}", f"seed {len(seed.taps)} "
         f"({dupes} repeats)", r.published == len(seed.taps))  # fmt: skip
    meals = seed.meals_per_site()
    shown = [r.rows.get(s, {}).get("meals_total", -1) for s in meals]
    want = sorted(meals.values())
    line(
        "meals per canteen min/median/max", _mmm(shown), f"seed {_mmm(want)}", sorted(shown) == want
    )
    same, n = r.meals_equal()
    line("canteens whose meals equal the seed's", f"{same} of {n}", "all", same == n)
    same, n = r.arrivals_equal()
    line("sites whose arrivals equal the seed's", f"{same} of {n}", "all", same == n)
    manual = sum(t.manual and not t.duplicate for t in seed.taps)
    print(f"  (of the seed's meals, {manual} recorded by staff for a forgotten card)")
    due = seed.visits_due()
    line("visits due at the end of the day (alerts open)", f"{r.visits_due_open}",
         f"seed {len(due)}", r.visits_due_open == len(due))  # fmt: skip
    line("  ... listed on the admin's visits-due page", f"{len(r.visits_due)}",
         f"seed {len(due)}", r.visits_due == due)  # fmt: skip
    present = sum(row.get("present", 0) for row in r.rows.values())
    line("present after closing", f"{present}", "seed 0", present == 0)
    print("Occupancy over the day (prefecture roll-up): console / seed as delivered / as tapped")
    for h in CURVE_HOURS:
        sample = next((c for c in fig.curve if c[0] >= r.clock.wall(h)), None)
        if sample is None:
            continue
        at = r.clock.hour(sample[0])
        print(f"  {int(at):02d}:{int(at % 1 * 60):02d}  present {sample[1]:>6} / "
              f"{seed.present_at(at, sent_by=at):>6} / {seed.present_at(at):>6}")  # fmt: skip
    print("Timings")
    tap = fig.tap_to_console_ms
    line("tap -> console (SSE) p95", f"{percentile(tap, 95):.0f} ms (p50 {percentile(tap, 50):.0f},"
         f" n {len(tap)}, missed {fig.missed})", f"<= {GOALS['tap_ms']:.0f} ms",
         percentile(tap, 95) <= GOALS["tap_ms"] and fig.missed == 0)  # fmt: skip
    for who in ("admin", "viewer"):
        ms = fig.overview_ms[who]
        label = "prefecture admin" if who == "admin" else "township viewer"
        line(f"GET /api/v1/overview p95, {label}", f"{percentile(ms, 95):.1f} ms (p50 "
             f"{percentile(ms, 50):.1f}, n {len(ms)})", f"<= {GOALS['overview_ms']:.0f} ms",
             percentile(ms, 95) <= GOALS["overview_ms"])  # fmt: skip
    lag, bound = fig.alert_lag_s, r.evaluate_s + 3
    line("alert engine lag p95 (tap -> visit-due cleared)", f"{percentile(lag, 95):.1f} s (n "
         f"{len(lag)}, unresolved {fig.alert_unresolved})", f"<= {bound:g} s (evaluate_s + 3)",
         bool(lag) and percentile(lag, 95) <= bound and not fig.alert_unresolved)  # fmt: skip
    if r.drain:
        line("backlog drain rate", f"{r.drain_rate:.0f} events/s ({r.drain[0]} in "
             f"{r.drain[1]:.2f} s)", f">= {GOALS['drain']:.0f} events/s",
             r.drain_rate >= GOALS["drain"])  # fmt: skip
    worker = r.cpu.get("ingest", 0.0)
    line("ingest CPU-seconds per 1,000 taps", f"{r.cpu_per_1000():.3f} (worker {worker:.1f} s)",
         f"<= {GOALS['cpu']} (2,000 taps/s a core)", r.cpu_per_1000() <= GOALS["cpu"])  # fmt: skip
    others = ", ".join(f"{k} {r.cpu_per_1000(k):.3f}" for k in ("console", "mosquitto", "influxd"))
    print(f"  CPU-seconds per 1,000 taps of the others: {others}")
    print(f"  planned lunch peak: {r.peak_rate:.0f} taps/s over 5 s")
    met = sum(m for _, m in checks)
    print(f"{met} of {len(checks)} checks met")
    return checks


def _devices(seed: Seed) -> list[str]:
    return [d for s in seed.sites for d in ([s.gate, s.canteen_device] if s.canteen else [s.gate])]


def _mmm(values: list[int]) -> str:
    if not values:
        return "-"
    return f"{min(values)} / {statistics.median(values):g} / {max(values)}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=10.0, help="wall minutes for 07:00-18:00")
    ap.add_argument("--scale", type=float, default=1.0, help="fraction of Dali's registry")
    ap.add_argument("--seed", type=int, default=2026)
    ap.add_argument("--publishers", type=int, default=3, help="kiosk publisher processes")
    args = ap.parse_args()
    result = run(args.minutes, args.scale, args.seed, args.publishers)
    checks = report(result)
    return 0 if all(m for _, m in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
