"""The Dali-scale day (bench/dali_day.py) in short: 3 % of Dali's registry, the day in a minute.

The same code as the full benchmark, on real Mosquitto, InfluxDB and the `warmcard ingest` and
`warmcard console` processes: the console's figures must equal what the seed intended, and the
goals that hold at any scale must be met (the drain rate and CPU need the full day's volume).
"""

from __future__ import annotations

import pytest

from bench.dali_day import GOALS, report, run
from bench.dali_probes import percentile


def test_a_short_dali_day_gives_the_seeds_figures_in_time(
    capsys: pytest.CaptureFixture[str],
) -> None:
    r = run(minutes=1.0, scale=0.03, seed_n=7, publishers=2, log=lambda *a: None)
    report(r)
    printed = capsys.readouterr().out
    seed = r.seed

    # Every tap stored once: redelivered messages overwrote themselves, nothing was lost.
    assert r.published == len(seed.taps) > sum(t.duplicate for t in seed.taps) > 0
    assert r.stored_by_kind == dict(seed.kinds()), printed
    # The console's day per site is the seed's: meals per canteen (hand-recorded ones too),
    # arrivals, "already served" repeats, unknown cards, and everyone gone after closing.
    assert any(t.manual for t in seed.taps) and any(t.send_hour > t.hour for t in seed.taps)
    for site in seed.sites:
        row = r.rows[site.site_id]
        taps = [t for t in seed.taps if t.site_id == site.site_id and not t.duplicate]
        assert row["meals_total"] == sum(t.kind == "meal" for t in taps), site.site_id
        assert row["meal_repeats"] == sum(t.kind == "meal_repeat" for t in taps), site.site_id
        assert row["unknown_cards"] == sum(t.kind == "unknown_card" for t in taps), site.site_id
        assert row["arrivals"] == seed.arrivals_per_site()[site.site_id], site.site_id
        assert row["present"] == 0, site.site_id
    # Flagged elders not seen today, and only they, are due a visit.
    assert r.visits_due == seed.visits_due() and r.visits_due < seed.lives_alone
    assert r.visits_due_open == len(r.visits_due)
    # Timings that hold at this scale too.
    tap = r.fig.tap_to_console_ms
    assert len(tap) > 50 and r.fig.missed == 0
    assert percentile(tap, 95) <= GOALS["tap_ms"], printed
    for who in ("admin", "viewer"):
        assert percentile(r.fig.overview_ms[who], 95) <= GOALS["overview_ms"], printed
    assert r.fig.alert_lag_s and not r.fig.alert_unresolved
    assert max(r.fig.alert_lag_s) <= r.evaluate_s + 3, printed
    assert r.drain is not None and r.drain[0] > 0
