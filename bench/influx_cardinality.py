"""Area tags on the tap points or not: series cardinality and query time at Dali's scale.

One day of taps for 1,700 sites (12 counties, 300 townships, 3,300 kiosks: an entrance and a
canteen at most sites), written twice on a real InfluxDB 1.6: as ingest writes them (site tag
only) and with county and township tags added. Then once more with every township re-coded, as
a re-organisation would do to tagged points. Prints series cardinality of each, and the time of
a county's and the prefecture's meal count: by tag, and derived in the query as Grafana does
(`"site" =~ /^(...)$/` over the sites of the area).

    .venv/bin/python -m bench.influx_cardinality
"""

from __future__ import annotations

import random
import statistics
import tempfile
import time
from pathlib import Path

from cloud_ingest.pipeline.influx import InfluxV1
from cloud_ingest.pipeline.lineprotocol import encode_point
from cloud_ingest.pipeline.settings import InfluxSettings
from warmcard.command.servers import InfluxD

COUNTIES, TOWNSHIPS, SITES = 12, 300, 1700
DAY_US = 1_767_196_800_000_000  # 2026-01-01T00:00:00+08:00 as UTC µs (near enough)


def _places(recode: bool) -> dict[str, tuple[str, str]]:
    out = {}
    for s in range(SITES):
        t = s % TOWNSHIPS
        county = f"dali/c{t % COUNTIES:02d}"
        out[f"site-{s:04d}"] = (county, f"{county}/t{t:03d}{'-new' if recode else ''}")
    return out


def _lines(tagged: bool, recode: bool, rng: random.Random) -> list[str]:
    places = _places(recode)
    lines = []
    for n, (site, (county, township)) in enumerate(sorted(places.items())):
        devices: list[tuple[str, tuple[str, ...]]] = [
            (f"{site}-gate", ("check_in", "check_out", "unknown_card"))
        ]
        if n < 1600:
            devices.append((f"{site}-canteen", ("meal", "meal_repeat")))
        for device, kinds in devices:
            for i in range(60):
                kind = kinds[i % len(kinds)]
                tags = {"device": device, "kind": kind, "site": site}
                if kind.startswith("meal"):
                    tags["meal_period"] = ("breakfast", "lunch", "dinner")[i % 3]
                if tagged:
                    tags |= {"county": county, "township": township}
                ts = DAY_US + rng.randrange(86_400_000_000)
                lines.append(encode_point("taps", tags, {"seq": i + 1}, ts))
    return lines


def _time(storage: InfluxV1, q: str, runs: int = 7) -> float:
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        storage.query(q)
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1000


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp, InfluxD(Path(tmp)) as server:
        results = {}
        for name, tagged, recode in (
            ("site_only", False, False),
            ("area_tags", True, False),
            ("area_tags_recoded", True, True),
        ):
            storage = InfluxV1(InfluxSettings(url=server.url, database=name, timeout_s=120))
            storage.ensure_database()
            rng = random.Random(1)
            lines = _lines(tagged, False, rng)
            if recode:  # the same day written again after the re-coding: new series
                lines += _lines(tagged, True, random.Random(2))
            for i in range(0, len(lines), 20000):
                storage.write(lines[i : i + 20000])
            (counted,) = storage.query("SHOW SERIES EXACT CARDINALITY")
            results[name] = (storage, len(lines), int(counted.values[0][-1]))
        places = _places(False)
        county_sites = sorted(s for s, (c, _) in places.items() if c == "dali/c00")
        where_time = f"time >= {DAY_US}u AND time < {DAY_US + 86_400_000_000}u"
        meals = f'SELECT count("seq") FROM "taps" WHERE "kind" = \'meal\' AND {where_time}'
        regex_county = "(" + "|".join(county_sites) + ")"
        regex_all = "(" + "|".join(sorted(places)) + ")"
        derived = results["site_only"][0]
        tagged_db = results["area_tags"][0]
        print(f"{'database':<20} {'points':>8} {'series':>8}")
        for name, (_, points, card) in results.items():
            print(f"{name:<20} {points:>8} {card:>8}")
        timings = [
            (f"county ({len(county_sites)} sites), by tag", tagged_db, "\"county\" = 'dali/c00'"),
            ("county, derived: site =~ /^(...)$/", derived, f'"site" =~ /^{regex_county}$/'),
            (f"prefecture ({SITES} sites), no filter", tagged_db, ""),
            ("prefecture, derived: site =~ /^(...)$/", derived, f'"site" =~ /^{regex_all}$/'),
        ]
        print("meal count of the day, median of 7 runs:")
        for label, storage, where in timings:
            query = meals + (f" AND {where}" if where else "")
            print(f"  {label:<40} {_time(storage, query):7.1f} ms")
        for storage, _, _ in results.values():
            storage.close()


if __name__ == "__main__":
    main()
