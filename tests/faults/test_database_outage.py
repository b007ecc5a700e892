"""The database host dies (docs/operations.md, "Several machines"): two `warmcard ingest`
workers and two consoles on one PostgreSQL, Mosquitto and InfluxDB, canteen kiosks publishing
a steady 100 taps/s. PostgreSQL stops for 6 s and comes back on the same port and data.

While it is down the workers cannot check batches against the conflict index, so they store
and acknowledge none: they hold the batch in hand and try it again, and say so in their logs
and /healthz. Once the database answers they go on by themselves, with no restart: every tap
ends up in InfluxDB exactly once, and both workers are the processes started at the beginning.
"""

from __future__ import annotations

import os
import signal
import threading
import time
import uuid
from pathlib import Path

import httpx

from cloud_ingest.console.roles import Role
from tests.faults.deployment import CANTEENS, METRICS_TOKEN, PEOPLE, Deployment
from tests.support.console import add_user, place_sites
from tests.support.ingest import EventMaker, Publisher, wait_for
from warmcard.command.servers import InfluxD, Mosquitto
from warmcard.command.servers.postgres import PostgreSQL
from warmcard.contract import Kind, MealPeriod

RATE = 100  # taps per second, all kiosks together
DURATION_S = 16.0
DOWN_AT_S, UP_AT_S = 4.0, 10.0


def _fast_shutdown(pg: PostgreSQL) -> None:
    """`pg_ctl stop -m fast`: sessions cut, the cluster shut down cleanly (SIGTERM would wait for
    the workers' pooled connections to close)."""
    assert pg.proc is not None
    os.kill(pg.proc.pid, signal.SIGINT)
    pg.proc.wait(30)
    pg.proc = None


def _worker_health(worker_url: str) -> dict[str, object]:
    r = httpx.get(
        f"{worker_url}/healthz", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}, timeout=5
    )
    return dict(r.json())


def test_the_database_host_down_for_6_s_loses_and_doubles_nothing_without_a_restart(
    tmp_path: Path, influxd: InfluxD, influx_db: str
) -> None:
    pg = PostgreSQL(tmp_path / "postgresql")
    pg.start()
    broker = Mosquitto(tmp_path / "mosquitto")
    broker.start()
    prefix = f"db{uuid.uuid4().hex[:6]}"
    d = Deployment(tmp_path, broker, influxd, influx_db, lambda _store: pg.url, prefix)
    try:
        d.write_registry()
        a, b = d.sites
        place_sites(pg.url, {a: "dali/dali-city/xizhou", b: "dali/dali-city/zhoucheng"})
        add_user(pg.url, "admin.dali", Role.ADMIN, "dali")
        d.start()
        pids = [w.proc.pid for w in d.workers if w.proc is not None]

        makers = [EventMaker(d.canteen(n)) for n in range(CANTEENS)]
        published: dict[str, set[int]] = {m.device_id: set() for m in makers}
        publisher = Publisher(broker.port)
        errors: list[BaseException] = []

        def kiosks() -> None:
            try:
                start, sent, pending = time.monotonic(), 0, []
                while (elapsed := time.monotonic() - start) < DURATION_S:
                    while sent < int(elapsed * RATE):
                        n = sent % CANTEENS
                        person = d.person(n, (sent // CANTEENS) % PEOPLE)
                        event = makers[n].make(Kind.MEAL, person, MealPeriod.LUNCH)
                        pending.append((event, publisher.publish_async(event)))
                        sent += 1
                    time.sleep(0.01)
                for event, info in pending:
                    info.wait_for_publish(60)
                    published[event.device_id].add(event.seq)
            except BaseException as exc:
                errors.append(exc)

        thread = threading.Thread(target=kiosks, name="kiosks", daemon=True)
        thread.start()
        time.sleep(DOWN_AT_S)
        _fast_shutdown(pg)
        stored_at_down = sum(len(v) for v in d.stored_seqs().values())
        # The workers name the failure in /healthz while they hold the taps.
        held = wait_for(
            lambda: [h for w in d.workers if not (h := _worker_health(w.url))["storage_ok"]],
            timeout=UP_AT_S - DOWN_AT_S,
            interval=0.2,
        )
        assert "database unavailable" in str(held[0]["metrics"]["last_storage_error"])
        time.sleep(max(0.0, UP_AT_S - DOWN_AT_S - 1.0))
        stored_while_down = sum(len(v) for v in d.stored_seqs().values()) - stored_at_down
        pg.start(timeout=60)
        thread.join(DURATION_S + 60)
        publisher.close()
        assert not errors, errors
        total = sum(len(s) for s in published.values())
        assert total >= RATE * DURATION_S * 0.95, f"only {total} taps published"

        def complete() -> bool:
            return sum(len(v) for v in d.stored_seqs().values()) >= total

        wait_for(complete, timeout=60, interval=0.5)
        stored = d.stored_seqs()
        doubled = {k: len(v) - len(set(v)) for k, v in stored.items() if len(v) != len(set(v))}
        lost = {k: len(published[k] - set(stored.get(k, []))) for k in published}
        assert not doubled, f"taps stored twice: {doubled}"
        assert not any(lost.values()), f"taps lost: {lost}"
        # Held, not stored, while the database was down (a batch in flight may have finished).
        assert stored_while_down <= RATE, stored_while_down
        # The same processes throughout, healthy again, and their logs name the outage.
        assert [w.proc.pid for w in d.workers if w.proc and w.proc.poll() is None] == pids
        wait_for(lambda: all(_worker_health(w.url)["storage_ok"] for w in d.workers), timeout=30)
        logs = "".join(w.log_file.read_text(errors="replace") for w in d.workers)
        assert "database unavailable" in logs and "held unacked" in logs
        print(f"\ndatabase outage: {total} taps, {stored_while_down} stored while down")
    finally:
        d.stop()
        broker.stop()
        pg.cleanup()
