"""What bench/dali_day.py measures while the day runs, as the console's users see it.

- tap → console: the probe township's taps are published here, one at a time, and timed until
  the township viewer's overview stream (SSE) shows the site's counts change;
- overview API: GET /api/v1/overview as the prefecture admin and as the township viewer;
- alert engine: a flagged elder's first tap until they leave the viewer's visits-due list;
- the occupancy curve: the admin's prefecture roll-up over the day.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import httpx

from bench.dali_kiosks import Message, connect, publish
from tests.support.console import logged_in

PRESENCE = ('"kind":"check_in"', '"kind":"meal"', '"kind":"meal_repeat"')
WAIT_S = 5.0  # a probe tap not shown by then counts as missed


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process (all its threads), from /proc."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _signature(row: dict[str, Any]) -> tuple[Any, ...]:
    keys = ("present", "arrivals", "meals_total", "meal_repeats", "unknown_cards")
    return tuple(row.get(k) for k in keys)


@dataclass
class Figures:
    tap_to_console_ms: list[float] = field(default_factory=list)
    missed: int = 0
    overview_ms: dict[str, list[float]] = field(default_factory=dict)
    curve: list[tuple[float, int, int, int]] = field(default_factory=list)  # wall, present, ...
    alert_lag_s: list[float] = field(default_factory=list)
    alert_unresolved: int = 0
    probe_published: int = 0


class Probes:
    """Threads in the bench process; `start()` before the day, `stop()` after it."""

    def __init__(
        self,
        console_url: str,
        broker_port: int,
        admin: str,
        viewer: str,
        township: str,
        probe_msgs: list[Message],
        flagged: set[str],
    ) -> None:
        self.url = console_url
        self.broker_port = broker_port
        self.admin, self.viewer, self.township = admin, viewer, township
        self.msgs = probe_msgs
        self.flagged = flagged
        self.fig = Figures(overview_ms={"admin": [], "viewer": []})
        self._stop = threading.Event()
        self._sigs: dict[str, tuple[Any, ...]] = {}
        self._cond = threading.Condition()
        self._first_tap: dict[str, float] = {}
        self._due_polls: list[tuple[float, set[str]]] = []
        self._threads: list[threading.Thread] = []
        self.done = threading.Event()  # every probe tap published
        self._sent: set[bytes] = set()

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        with closing(logged_in(self.url, self.viewer)) as c:
            first = c.get("/api/v1/overview", params={"area": self.township, "page_size": 200})
            first.raise_for_status()
            self._sigs = {r["site_id"]: _signature(r) for r in first.json()["sites"]}
        stream_open = threading.Event()
        for target, args in (
            (self._watch, (stream_open,)),
            (self._poll_overview, ()),
            (self._poll_due, ()),
        ):
            t = threading.Thread(target=target, args=args, daemon=True)
            t.start()
            self._threads.append(t)
        stream_open.wait(15)
        t = threading.Thread(target=self._publish_probes, daemon=True)
        t.start()
        self._threads.append(t)

    def stop(self) -> Figures:
        self.done.wait()
        self._stop.set()
        for t in self._threads:
            t.join(15)
        self._alert_lags()
        return self.fig

    # ------------------------------------------------------------------ tap → console

    def _watch(self, opened: threading.Event) -> None:
        with closing(logged_in(self.url, self.viewer)) as c:
            params = {"area": self.township}
            with c.stream("GET", "/api/v1/overview/stream", params=params, timeout=None) as r:
                opened.set()
                name = ""
                for line in r.iter_lines():
                    if self._stop.is_set():
                        return
                    if line.startswith("event: "):
                        name = line[7:]
                    elif line.startswith("data: ") and name == "sites":
                        rows = json.loads(line[6:])["sites"]
                        with self._cond:
                            for row in rows:
                                self._sigs[row["site_id"]] = _signature(row)
                            self._cond.notify_all()

    def _publish_probes(self) -> None:
        client, window = connect(self.broker_port, "dali-probe")
        try:
            for m in self.msgs:
                delay = m.send_at - time.time()
                if delay > 0:
                    time.sleep(delay)
                site = m.topic.split("/")[3].rsplit("-", 1)[0]
                with self._cond:
                    before = self._sigs.get(site)
                t0 = time.perf_counter()
                publish(client, window, m)
                self.fig.probe_published += 1
                text = m.payload.decode()
                person = text.partition('"person_id":"')[2].partition('"')[0]
                if person in self.flagged and any(k in text for k in PRESENCE):
                    self._first_tap.setdefault(person, time.time())
                if self._already_sent(m):
                    continue  # a redelivery changes no count
                with self._cond:
                    shown = self._cond.wait_for(partial(self._changed, site, before), WAIT_S)
                if shown:
                    self.fig.tap_to_console_ms.append((time.perf_counter() - t0) * 1000)
                else:
                    self.fig.missed += 1
        finally:
            for _ in range(1000):
                window.acquire()
            client.loop_stop()
            client.disconnect()
            self.done.set()

    def _changed(self, site: str, before: tuple[Any, ...] | None) -> bool:
        return self._sigs.get(site) != before

    def _already_sent(self, m: Message) -> bool:
        seen = m.payload in self._sent
        self._sent.add(m.payload)
        return seen

    # ------------------------------------------------------------------ pollers

    def _timed(self, client: httpx.Client, path: str, into: list[float]) -> Any:
        t0 = time.perf_counter()
        r = client.get(path)
        into.append((time.perf_counter() - t0) * 1000)
        r.raise_for_status()
        return r.json()

    def _poll_overview(self) -> None:
        with (
            closing(logged_in(self.url, self.admin)) as admin,
            closing(logged_in(self.url, self.viewer)) as viewer,
        ):
            while not self._stop.wait(0.25):
                doc = self._timed(admin, "/api/v1/overview", self.fig.overview_ms["admin"])
                s = doc["rollup"]["scope"]
                self.fig.curve.append((time.time(), s["present"], s["arrivals"], s["meals_total"]))
                self._timed(viewer, "/api/v1/overview", self.fig.overview_ms["viewer"])

    def _poll_due(self) -> None:
        with closing(logged_in(self.url, self.viewer)) as viewer:
            while not self._stop.wait(1.0):
                due = viewer.get("/api/v1/visits/due")
                due.raise_for_status()
                self._due_polls.append((time.time(), {d["person_id"] for d in due.json()["due"]}))

    def _alert_lags(self) -> None:
        """Seconds from each flagged probe elder's first tap to their leaving the due list."""
        for person, tapped in self._first_tap.items():
            after = [(t, due) for t, due in self._due_polls if t >= tapped]
            if not any(person in due for t, due in self._due_polls if t < tapped):
                continue  # was not on the list before the tap: nothing to clear
            gone = next((t for t, due in after if person not in due), None)
            if gone is None:
                self.fig.alert_unresolved += 1
            else:
                self.fig.alert_lag_s.append(gone - tapped)


def wait_until(check: Callable[[], bool], timeout: float, every: float = 0.02) -> float | None:
    """Poll `check` until true; the time.time() it became true, or None after `timeout`."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if check():
            return time.time()
        time.sleep(every)
    return None
