"""Run a Grafana dashboard's InfluxQL the way Grafana does, and days of demo taps to run it on.

Grafana's InfluxDB datasource (public/app/plugins/datasource/influxdb/datasource.ts,
`interpolateQueryExpr`) substitutes a multi-value or "include All" variable as a regex: each
value escaped with `kbn.regexEscape` (a backslash before each of \\ ^ $ * + ? . ( ) | [ ] { } /),
one value alone, several as `(a|b|c)`; "All" without a custom all-value is every current
option. `$timeFilter` becomes `time >= <from>ms and time <= <to>ms`.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterator, Mapping, Sequence
from datetime import date, timedelta
from typing import Any

from cloud_ingest.pipeline.influx import Storage
from cloud_ingest.pipeline.lineprotocol import encode_tap
from warmcard import localtime
from warmcard.command.demo_seed import SeedSite
from warmcard.contract import Kind, MealPeriod, TapEvent
from warmcard.timestamps import format_ts, new_event_id

ALL = "$__all"
_REGEX_SPECIAL = re.compile(r"[\\^$*+?.()|\[\]{}/]")
_VARIABLE = re.compile(r"\$(\w+)|\$\{(\w+)\}")


def regex_escape(value: str) -> str:
    return _REGEX_SPECIAL.sub(lambda m: "\\" + m.group(0), value)


def regex_value(values: Sequence[str]) -> str:
    escaped = [regex_escape(v) for v in values]
    return escaped[0] if len(escaped) == 1 else "(" + "|".join(escaped) + ")"


def interpolate(
    query: str, variables: Mapping[str, Sequence[str]], time_range: tuple[int, int] | None = None
) -> str:
    """The query as Grafana sends it: variables as regexes, `$timeFilter` in milliseconds."""
    if time_range is not None:
        start_us, end_us = time_range
        # Grafana's range end is inclusive, to the millisecond: a local day ends at .999.
        query = query.replace(
            "$timeFilter", f"time >= {start_us // 1000}ms and time <= {(end_us - 1) // 1000}ms"
        )

    def sub(m: re.Match[str]) -> str:
        name = m.group(1) or m.group(2)
        if name not in variables:
            raise AssertionError(f"the dashboard uses ${name}, which the test does not set")
        return regex_value(variables[name])

    return _VARIABLE.sub(sub, query)


def resolve_variables(
    dashboard: Mapping[str, Any], storage: Storage, chosen: Mapping[str, str]
) -> dict[str, list[str]]:
    """Each variable's value in order, as Grafana refreshes them: its options from its own query
    (earlier variables substituted), then the chosen value or, when none, All (every option)."""
    values: dict[str, list[str]] = {}
    for var in dashboard["templating"]["list"]:
        options = [
            str(row[1])
            for s in storage.query(interpolate(var["query"], values))
            for row in s.values
        ]
        pick = chosen.get(var["name"], ALL)
        if pick == ALL:
            values[var["name"]] = options
        else:
            assert pick in options, f"{pick!r} is not an option of ${var['name']}: {options}"
            values[var["name"]] = [pick]
    return values


def dashboard_queries(dashboard: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    """(panel title, raw InfluxQL) of every panel target."""
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            assert target.get("rawQuery"), f"{panel['title']}: only raw InfluxQL is checked"
            yield panel["title"], target["query"]


def _times(rng: random.Random, start_us: int, end_us: int, n: int) -> list[int]:
    return sorted(rng.randrange(start_us, end_us) for _ in range(n))


def demo_taps(
    sites: Sequence[SeedSite], days: Sequence[date], now_us: int, seed: int = 7
) -> list[str]:
    """Line protocol for courtyard days like the demo's kiosks play: people who come, leave and
    some come back, meals by period, repeats and unknown cards; nothing after `now_us`."""
    rng = random.Random(seed)
    lines: list[str] = []
    seqs: dict[str, int] = {}
    for day in days:
        start, end = localtime.day_bounds_us(day, "Asia/Shanghai")
        end = min(end, now_us - 1_000_000)
        if end - start < 60_000_000:
            continue
        for site in sites:
            taps: list[tuple[int, str, Kind, MealPeriod | None, str | None, str]] = []
            gate, canteen = site.entrance_device, site.canteen_device
            for p in site.people:
                who = (p.person_id, p.card_uid)
                if rng.random() < 0.8:
                    moves = 4 if rng.random() < 0.15 else 2  # some come back after lunch
                    for i, t in enumerate(_times(rng, start, end, moves)):
                        if i % 2 == 0 or rng.random() < 0.8:
                            kind = Kind.CHECK_IN if i % 2 == 0 else Kind.CHECK_OUT
                            taps.append((t, gate, kind, None, *who))
                for meal, chance in zip(MealPeriod, (0.3, 0.7, 0.4), strict=True):
                    if rng.random() < chance:
                        (t,) = _times(rng, start, end, 1)
                        taps.append((t, canteen, Kind.MEAL, meal, *who))
                        if rng.random() < 0.1:
                            taps.append((t + 1, canteen, Kind.MEAL_REPEAT, meal, *who))
            for t in _times(rng, start, end, rng.randrange(0, 3)):
                card = f"04EE{rng.getrandbits(40):010X}"
                taps.append((t, gate, Kind.UNKNOWN_CARD, None, None, card))
            for ts, device, kind, period, person_id, card in sorted(
                taps, key=lambda e: e[1:2] + e[:1]
            ):
                seqs[device] = seqs.get(device, 0) + 1
                event = TapEvent(
                    event_id=new_event_id(ts),
                    device_id=device,
                    seq=seqs[device],
                    ts=format_ts(ts),
                    card_uid=card,
                    kind=kind,
                    meal_period=period,
                    person_id=person_id,
                )
                lines.append(encode_tap(event, site.site_id, ts))
    return lines


def recent_days(today: date, n: int) -> list[date]:
    return [today - timedelta(days=k) for k in range(n - 1, -1, -1)]
