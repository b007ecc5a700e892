"""The alert engine: one per ingest service, fed by the consumer and by its own timer.

- `on_stored(batch)` is the ingest hook, called by the consumer after InfluxDB accepted a
  batch (before it is acked): it notes each person's latest sighting in memory and runs the
  anti-fraud windows. It never raises: an alerts problem must not hold up taps.
- Sightings are written to `last_seen` every second by the engine's thread, off the hot path
  (an upsert costs ~8 µs a row on SQLite). A crash loses at most that second, and the rebuild
  at start reads it back from InfluxDB.
- `tick()` runs every `evaluate_s` on the engine's thread: device health and visit-due.
- At start, `rebuild_last_seen()` fills `last_seen` from InfluxDB (see its docstring).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from pathlib import Path

from sqlalchemy.exc import SQLAlchemyError

from cloud_ingest import db
from cloud_ingest.alerts import wellbeing
from cloud_ingest.alerts.device_health import DeviceHealth
from cloud_ingest.alerts.fraud import PRESENCE, FraudDetector
from cloud_ingest.alerts.models import DEVICE_KINDS, Finding, Kind, LastSeen
from cloud_ingest.alerts.settings import AlertSettings
from cloud_ingest.alerts.store import AlertStore
from cloud_ingest.errors import IngestError
from cloud_ingest.pipeline.influx import Storage, quote_ident
from cloud_ingest.pipeline.lineprotocol import MEASUREMENT
from cloud_ingest.pipeline.live import LiveEvent, LiveState
from cloud_ingest.pipeline.provenance import Mismatch
from cloud_ingest.registry import areas
from cloud_ingest.registry.store import Registry
from warmcard.localtime import DEFAULT_TZ
from warmcard.timestamps import format_ts, now_us

log = logging.getLogger(__name__)

Clock = Callable[[], int]
DAY_US = 86_400 * 1_000_000
PRUNE_EVERY_US = 60 * 1_000_000
FLUSH_S = 1.0  # how often sightings reach the last_seen table
ALIVE_KEY = "last_seen_current_us"  # last_seen was being kept by the hook up to this time


class AlertEngine:
    def __init__(
        self,
        settings: AlertSettings,
        registry: Registry,
        live: LiveState | None,
        storage: Storage | None,
        *,
        console_db_path: Path | str | None,
        default_tz: str = DEFAULT_TZ,
        clock: Clock = now_us,
        store: AlertStore | None = None,
        location: Path | str | None = None,
    ) -> None:
        self.settings = settings
        self.registry = registry
        self.live = live
        self.storage = storage
        self.console_db_path = console_db_path  # the console store: a path or a URL
        self._console: db.Database | None = None
        self.default_tz = default_tz
        self.clock = clock
        if store is None:
            where = location or settings.db_path
            if where is None:
                raise ValueError("give the alerts store: location, settings.db_path or store")
            store = AlertStore(where)
        self.store = store  # thread-safe: the hook, the evaluator and requests share it
        self.health = DeviceHealth(settings)
        self.fraud = FraudDetector(settings, registry, default_tz)
        self._site_paths: dict[str, str] = {}
        self._last_prune_us = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.hook_errors = 0
        self._sightings: dict[str, tuple[int, str, str, str]] = {}  # person -> ts, site, ...
        self._sightings_lock = threading.Lock()
        self.rebuilt = False  # last_seen caught up with InfluxDB during this run
        self.refresh_site_paths()

    # ------------------------------------------------------------------ areas

    def refresh_site_paths(self) -> dict[str, str]:
        """Re-read where each site sits from the console store (empty if there is none)."""
        location = self.console_db_path
        if location is None or (not db.is_url(location) and not Path(location).exists()):
            return self._site_paths
        try:
            if self._console is None:
                self._console = db.Database(location, "console")
            with self._console.read() as conn:
                self._site_paths = areas.site_paths(conn)
        except SQLAlchemyError as exc:
            log.warning("cannot read areas from the console store: %s", exc)
        return self._site_paths

    def area_of(self, site_id: str | None) -> str:
        """The site's area path; '' (root: only whole-prefecture users see it) if unplaced."""
        return areas.place_of(site_id, self._site_paths)

    def _raise(self, findings: Iterable[Finding]) -> None:
        self.store.raise_many([(f, self.area_of(f.site_id)) for f in findings])

    def _tz_of(self) -> dict[str, str]:
        return {s.site_id: s.tz for s in self.registry.sites()}

    def tz_of(self, site_id: str | None) -> str:
        """The site's time zone (the console's default for an alert without a site)."""
        site = self.registry.site(site_id) if site_id else None
        return site.tz if site else self.default_tz

    # ------------------------------------------------------------------ ingest hook

    def on_stored(self, batch: list[tuple[str, LiveEvent]]) -> None:
        """After InfluxDB accepted `batch`: last_seen and anti-fraud. Never raises."""
        try:
            with self._sightings_lock:
                latest = self._sightings
                for site_id, ev in batch:
                    person = ev.person_id
                    if person is None or ev.kind not in PRESENCE:
                        continue
                    prev = latest.get(person)
                    if prev is None or ev.ts_us > prev[0]:
                        latest[person] = (ev.ts_us, site_id, ev.device_id, ev.kind)
            findings = self.fraud.observe(batch)
            if findings:
                self._raise(findings)
            now = self.clock()
            if now - self._last_prune_us >= PRUNE_EVERY_US:
                self._last_prune_us = now
                self.fraud.prune(now)
        except Exception:
            self.hook_errors += 1
            log.exception("alerts hook failed on a batch of %d (taps are stored)", len(batch))

    def on_suspect(self, found: list[Mismatch]) -> None:
        """Taps stored apart because they do not match the registry: one alert per device and
        what did not match, naming it and what to do. Never raises."""
        try:
            findings = [
                Finding(
                    Kind.TAP_MISMATCH,
                    f"{m.device_id}:{m.what}",
                    m.ts_us,
                    f"{m.detail_zh}（设备 {m.device_id}，序号 {m.seq}）。此刷卡已保存但未计数；"
                    "请核对登记（卡、人员、所属院）或检查该设备是否被冒用。",
                    f"{m.detail_en} (device {m.device_id}, seq {m.seq}). The tap is kept but "
                    "not counted; check the registry (card, person, home site) or whether the "
                    "device is being misused.",
                    site_id=m.site_id,
                    device_id=m.device_id,
                    person_id=m.person_id,
                )
                for m in found
            ]
            self._raise(findings)
        except Exception:
            self.hook_errors += 1
            log.exception("alerts hook failed on %d suspect taps (they are stored)", len(found))

    def flush_sightings(self) -> int:
        """Write the sightings noted since the last flush to `last_seen`; returns how many."""
        with self._sightings_lock:
            pending, self._sightings = self._sightings, {}
        if pending:
            # Only people still registered: a sighting noted before an erasure (made by this
            # process or by `warmcard person erase` in another) must not bring them back.
            known = self.registry.people_homes(list(pending))
            pending = {p: row for p, row in pending.items() if p in known}
        if pending:
            try:
                self.store.upsert_last_seen(LastSeen(p, *row) for p, row in pending.items())
            except Exception:
                with self._sightings_lock:  # keep them for the next try, newest wins
                    for person, row in pending.items():
                        now = self._sightings.get(person)
                        if now is None or row[0] > now[0]:
                            self._sightings[person] = row
                raise
        return len(pending)

    # ------------------------------------------------------------------ periodic

    def tick(self) -> None:
        """Device health and visit-due, once."""
        now = self.clock()
        self.flush_sightings()
        self.refresh_site_paths()
        self.evaluate_devices(now)
        self.evaluate_wellbeing(now)
        if self.rebuilt:
            self.store.set_meta(ALIVE_KEY, now)

    def evaluate_devices(self, now: int) -> None:
        if self.live is None:
            return
        devices = self.live.device_seen()
        site_of = {d.device_id: d.site_id for d in self.registry.devices()}
        found = self.health.evaluate(now, devices, site_of, self.live.stored_seqs())
        self._raise(found)
        problems = {(f.kind, f.subject) for f in found}
        for kind in DEVICE_KINDS:
            # Clear only what we know is healthy now (or retired), not devices whose status
            # has not arrived yet after a restart.
            healthy = [
                d
                for d in self.store.open_subjects(kind)
                if (kind, d) not in problems and (d not in site_of or d in devices)
            ]
            self.store.clear_auto(kind, healthy, now)

    def evaluate_wellbeing(self, now: int) -> list[wellbeing.Due]:
        dues = wellbeing.assess(self.settings, self.store, self.registry, self._site_paths, now)
        found = wellbeing.evaluate(dues, now, self._tz_of())
        self._raise(found)
        due_now = {f.subject for f in found}
        self.store.clear_auto(
            Kind.VISIT_DUE, self.store.open_subjects(Kind.VISIT_DUE) - due_now, now
        )
        return dues

    # ------------------------------------------------------------------ last seen

    def rebuild_last_seen(self) -> int:
        """Fill `last_seen` from InfluxDB; returns the number of taps read.

        `person_id` is a field, so InfluxQL cannot GROUP BY it. Instead the taps that show a
        person present (kind is a tag, so this filter is indexed) are read in one-day windows,
        newest first, and each person's newest kept. The table persists and the ingest hook
        keeps it current, so after the first start only the time since it was last current
        (minus a day of overlap) is read, not the whole `last_seen_rebuild_days`.
        """
        if self.storage is None:
            return 0
        now = self.clock()
        start = now - int(self.settings.last_seen_rebuild_days * DAY_US)
        alive = self.store.meta(ALIVE_KEY)
        if alive is not None:
            start = max(start, alive - DAY_US)
        kinds = " OR ".join(f"\"kind\" = '{k.value}'" for k in sorted(PRESENCE))
        found: set[str] = set()
        read = 0
        end = now + DAY_US  # device clocks may run a little ahead
        while end > start:
            lo = max(start, end - DAY_US)
            series = self.storage.query(
                f'SELECT "person_id", "site", "device", "kind" FROM {quote_ident(MEASUREMENT)} '
                f"WHERE ({kinds}) AND time >= '{format_ts(lo)}' AND time < '{format_ts(end)}'"
            )
            latest: dict[str, LastSeen] = {}
            for s in series:
                idx = {c: i for i, c in enumerate(s.columns)}
                for row in s.values:
                    read += 1
                    person = row[idx["person_id"]]
                    if not person or person in found:
                        continue
                    ts = int(row[idx["time"]])
                    prev = latest.get(person)
                    if prev is None or ts > prev.ts_us:
                        latest[person] = LastSeen(
                            person, ts, row[idx["site"]], row[idx["device"]], row[idx["kind"]]
                        )
            if latest:
                self.store.upsert_last_seen(latest.values())
                found.update(latest)
            end = lo
        self.rebuilt = True
        return read

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="alerts", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            n = self.rebuild_last_seen()
            log.info("last_seen rebuilt from %d taps", n)
        except IngestError as exc:
            log.warning("last_seen not rebuilt from InfluxDB (%s); the hook keeps it", exc)
        next_tick = 0.0
        elapsed = 0.0
        while True:
            try:
                if elapsed >= next_tick:
                    self.tick()
                    next_tick = elapsed + self.settings.evaluate_s
                else:
                    self.flush_sightings()
            except Exception:
                log.exception("alert evaluation failed")
            if self._stop.wait(FLUSH_S):
                self.flush_sightings()
                return
            elapsed += FLUSH_S

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
        self.store.close()
        if self._console is not None:
            self._console.close()
