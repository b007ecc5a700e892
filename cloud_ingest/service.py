"""The console's service (`warmcard console`): registry, live state, alerts, enrol mode and
the device link, beside the web app that shows them.

It consumes no events: ingest workers store them and publish what they stored on the
stored-taps channel (cloud_ingest.pipeline.stored), which every console subscribes to, so the
live state, the alert rules and enrol mode see every tap whichever worker took it. At start,
and every ``live_resync_s``, today is rebuilt from InfluxDB, so a console that was down or
disconnected converges by itself. Any number of consoles may run behind a reverse proxy.

    service = ConsoleService(IngestSettings.load("ingest.toml"))
    service.start()      # returns at once; connects in background threads
    ...
    service.stop()

The FastAPI app (cloud_ingest.web.app.create_app) owns one in its lifespan.
"""

from __future__ import annotations

import logging
import threading

from cloud_ingest.alerts.engine import AlertEngine
from cloud_ingest.alerts.notify import open_notifier
from cloud_ingest.console import hand_meals
from cloud_ingest.console.audit import AuditLog
from cloud_ingest.console.enrolment import EnrolMode
from cloud_ingest.console.kiosk_erasure import KioskErasures
from cloud_ingest.db import Database
from cloud_ingest.errors import IngestError
from cloud_ingest.ops.heal import Healer
from cloud_ingest.pipeline.devicelink import DeviceLink
from cloud_ingest.pipeline.downlink import Downlink
from cloud_ingest.pipeline.influx import InfluxV1, Storage
from cloud_ingest.pipeline.lineprotocol import HAND_DEVICE
from cloud_ingest.pipeline.live import Clock, LiveState
from cloud_ingest.pipeline.stored import StoredTap
from cloud_ingest.process import CloudProcess
from cloud_ingest.settings import IngestSettings
from warmcard.contract import Kind, command_topic
from warmcard.ids import is_erased
from warmcard.timestamps import now_us
from warmcard.watchdog import Watchdog

log = logging.getLogger(__name__)
# How long a starting console waits for the stored-taps subscription before counting today.
LINK_WAIT_S = 5.0


class ConsoleService(CloudProcess):
    def __init__(
        self,
        settings: IngestSettings,
        *,
        query_storage: Storage | None = None,
        clock: Clock = now_us,
        watchdog: Watchdog | None = None,
    ) -> None:
        # The workers write the dead letters and conflicts; the operator's pages read them.
        super().__init__(settings, clock, watchdog, "sync")
        self.query_storage = query_storage or InfluxV1(settings.influx)
        self.live = LiveState(
            self.registry,
            self.query_storage,
            default_tz=settings.tz,
            clock=clock,
            stale_s=settings.status_stale_s,
        )
        self.alerts = AlertEngine(
            settings.alerts,
            self.registry,
            self.live,
            self.query_storage,
            console_db_path=settings.store("console"),
            location=settings.store("alerts"),
            default_tz=settings.tz,
            clock=clock,
        )
        # Notifications: new alerts to each area's robots and mailboxes, on their own thread.
        self.notifier = open_notifier(
            settings.notify,
            settings.store("alerts"),
            self.registry,
            holder=settings.console_id,
            clock=clock,
        )
        self.enrol = EnrolMode(self.registry, on_window=self._publish_configs)
        # Erase commands recorded by erasures (here or by `warmcard person erase`) for kiosks.
        self.kiosk_erasures = KioskErasures(settings.store("console"), clock=clock)
        # Hand meals (补录) a kiosk's tap of the same meal replaces: checked for the elders of
        # each stored kiosk meal, and for everyone at each resync (hand_meals.replace_by_kiosk).
        self.console_db = Database(settings.store("console"), "console")
        self._meal_persons: set[str] = set()
        self._meal_lock = threading.Lock()
        self.hand_meals_replaced = 0
        self.stored_batches = 0
        self.stored_taps = 0
        self.last_stored_us: int | None = None  # when the last stored taps arrived
        self.devicelink = DeviceLink(
            settings,
            self.live,
            client_id=f"{settings.console_id}-link",
            on_connect=self._on_link_connected,
            on_stored=self._on_stored,
        )
        self.downlink = Downlink(self.registry, self.devicelink)
        self._downlink_version = self.registry.version  # on connect everything is published
        self.healer = Healer(
            settings.heal,
            holder=settings.console_id,
            storage=self.query_storage,
            registry=self.registry,
            alerts=self.alerts,
            statuses=lambda: {d: s.status for d, s in self.live.device_seen().items()},
            publisher=self.devicelink,
            last_stored_us=lambda: self.last_stored_us,
            seen=self.seen,
            tz=settings.tz,
        )
        self._stop = threading.Event()
        self._recount = threading.Event()  # the link reconnected: rebuild today once subscribed
        self._sync_thread: threading.Thread | None = None
        self._heal_thread: threading.Thread | None = None
        self.started = False

    def _on_stored(self, taps: list[StoredTap]) -> None:
        """A worker stored `taps`: count them live, run the alert rules, keep enrol captures."""
        self.live.apply([t.live for t in taps])
        events = [ev for _, ev in (t.live for t in taps)]
        eaters = {
            ev.person_id
            for ev in events
            if ev.kind is Kind.MEAL and ev.person_id and ev.device_id != HAND_DEVICE
        }
        if eaters:
            with self._meal_lock:
                self._meal_persons |= eaters
        # Taps of an erased person (the kiosk pseudonymised them) count, and name nobody: no
        # sighting, anti-fraud finding or enrol capture is made of the token.
        named = [t for t in taps if not is_erased(t.card_uid)]
        self.alerts.on_stored([t.live for t in named])
        try:
            self.enrol.observe(named)
        except Exception:
            log.exception("enrol mode: capture failed (the taps are stored)")
        self.stored_batches += 1
        self.stored_taps += len(taps)
        self.last_stored_us = self.clock()

    def _on_link_connected(self) -> None:
        """The link (re)connected: taps stored while it was away came on no channel, so today
        is recounted once the stored-taps subscription is granted; then the downlink."""
        self._recount.set()
        self.downlink.publish_all()

    def _publish_configs(self) -> None:
        """An enrol window opened or closed: send what changed now (offline: on reconnect)."""
        if self.devicelink.connected.is_set():
            self.downlink.publish_all(changed_only=True)

    def start(self) -> None:
        """Connect everything; InfluxDB being down at start is survived (the consumer waits).

        The stored-taps subscription comes first and today's recount from InfluxDB after it, so
        no tap falls between them (the live state counts a (device, seq) once)."""
        self._stop.clear()
        self.devicelink.start()
        if not self.devicelink.subscribed.wait(LINK_WAIT_S):
            log.warning("stored-taps channel not subscribed yet; today is recounted once it is")
        else:
            self._recount.clear()
        try:
            self.live.rebuild()
        except IngestError as exc:
            log.warning("live state not rebuilt at start (%s); will retry", exc)
        self.alerts.start()
        if self.settings.notify.enabled:
            self.notifier.start()
        self._sync_thread = threading.Thread(
            target=self._sync_loop, name="ingest-sync", daemon=True
        )
        self._sync_thread.start()
        if self.settings.heal.enabled:
            self._heal_thread = threading.Thread(target=self._heal_loop, name="heal", daemon=True)
            self._heal_thread.start()
        self.watchdog.start()
        self.watchdog.ready(f"控制台 console {self.settings.console_id} running")
        self.started = True

    def apply_retention(self) -> tuple[int, int, int, int]:
        """Delete what is past its retention (`[retention]`): ended card assignments, closed
        alerts, visits, audit rows. Returns how many of each went."""
        r, now = self.settings.retention, self.clock()
        day = 86_400_000_000
        history = self.registry.prune_history(now - int(r.card_history_days * day))
        alerts, visits = self.alerts.store.prune(
            now - int(r.alerts_days * day), now - int(r.visits_days * day)
        )
        audit_log = AuditLog(self.settings.store("console"), clock=self.clock)
        try:
            audit = audit_log.prune(now - int(r.audit_days * day))
        finally:
            audit_log.close()
        if history or alerts or visits or audit:
            log.info(
                "retention: %d card assignment(s), %d alert(s), %d visit(s), %d audit row(s) "
                "deleted",
                history,
                alerts,
                visits,
                audit,
            )
        return history, alerts, visits, audit

    def _sync_loop(self) -> None:
        """Watch the registry (imports from any process) and resync live state from InfluxDB."""
        elapsed = 0.0
        next_resync = self.settings.live_resync_s if self.live.last_sync_us else 0.0
        next_retention = 0.0
        while not self._stop.wait(1.0):
            self.watchdog.beat("sync")
            elapsed += 1.0
            try:
                # Compare with the version last published, not refresh()'s answer: a console
                # edit in this process has already refreshed the shared registry cache.
                self.registry.refresh()
                if self.registry.version != self._downlink_version:
                    self._downlink_version = self.registry.version
                    log.info("registry changed (version %d)", self.registry.version)
                    if self.devicelink.connected.is_set():
                        self.downlink.publish_all(changed_only=True)
                    next_resync = 0.0
                self.send_erasures()
                if elapsed >= next_retention:
                    next_retention = elapsed + self.settings.retention.every_s
                    self.apply_retention()
                if self._recount.is_set() and self.devicelink.subscribed.is_set():
                    self._recount.clear()
                    next_resync = 0.0
                everyone = elapsed >= next_resync
                try:
                    self.replace_hand_meals(everyone)
                except IngestError as exc:
                    log.warning("hand meals not checked against the kiosks' meals: %s", exc)
                if everyone:
                    self.live.rebuild()
                    next_resync = elapsed + self.settings.live_resync_s
            except IngestError as exc:
                log.warning("live resync failed: %s", exc)
            except Exception:
                log.exception("sync loop error")

    def replace_hand_meals(self, everyone: bool = False) -> int:
        """Replace the hand meals that kiosk meals stored since the last call match (of every
        elder when `everyone`); returns how many. Elders not checked because InfluxDB failed are
        checked again next time."""
        with self._meal_lock:
            persons, self._meal_persons = self._meal_persons, set()
        if not persons and not everyone:
            return 0
        try:
            replaced = hand_meals.replace_by_kiosk(
                self.console_db, self.query_storage, self._site_tz, self.clock(),
                None if everyone else persons,
            )  # fmt: skip
        except BaseException:
            with self._meal_lock:
                self._meal_persons |= persons
            raise
        self.hand_meals_replaced += len(replaced)
        return len(replaced)

    def _site_tz(self, site_id: str) -> str:
        site = self.registry.site(site_id)
        return site.tz if site is not None and site.tz else self.settings.tz

    def send_erasures(self) -> int:
        """Forget erase commands the kiosks confirmed (heartbeat `erased`), send the others to
        the kiosks online (again after kiosk_erasure.RESEND_S); returns how many were sent."""
        if not self.kiosk_erasures.pending():
            return 0
        seen = self.live.device_seen()
        online: set[str] = set()
        for device_id, device in seen.items():
            status = device.status
            if status is None:
                continue
            if status.erased:
                self.kiosk_erasures.confirmed(device_id, status.erased)
            if status.state == "online":
                online.add(device_id)
        self.kiosk_erasures.keep_only([d.device_id for d in self.registry.devices()])
        if not self.devicelink.connected.is_set():
            return 0
        due = self.kiosk_erasures.due(online)
        for command in due:
            self.devicelink.publish(command_topic(command.device_id), command.to_bytes(), 1, False)
            log.info("erase %s sent to %s", command.request_id, command.device_id)
        return len(due)

    def _heal_loop(self) -> None:
        """A self-healing round every `[heal] every_s` (cloud_ingest.ops.heal); the lease lets
        one console of several do it. Not watched by the watchdog: a round may be long."""
        while not self._stop.wait(self.settings.heal.every_s):
            if not self.devicelink.connected.is_set():
                continue  # resend requests would be lost; heartbeats may be stale
            try:
                self.healer.round(self.clock(), self._stop.is_set)
            except IngestError as exc:
                log.warning("heal round failed: %s", exc)
            except Exception:
                log.exception("heal round error")

    def stop(self) -> None:
        self.watchdog.close()
        self._stop.set()
        self.devicelink.stop()
        if self._heal_thread is not None:
            self._heal_thread.join(30)
        self.alerts.stop()
        self.notifier.stop()
        if self._sync_thread is not None:
            self._sync_thread.join(5)
        self.query_storage.close()
        self.kiosk_erasures.close()
        self.console_db.close()
        self.stores.close()
        self.started = False

    def health(self) -> dict[str, object]:
        """ok while the device link (status, stored taps, downlink) is connected."""
        linked = self.devicelink.connected.is_set()
        return {
            "status": "ok" if linked else "degraded",
            "role": "console",
            "status_link_connected": linked,
            "live_synced_us": self.live.last_sync_us,
            "stored_batches": self.stored_batches,
            "stored_taps": self.stored_taps,
            "registry_version": self.registry.version,
            "heal_rounds": self.healer.rounds,
            "heal_requests": self.healer.requested_total,
            "notify_sent": self.notifier.sent,  # notifications delivered by this console
            "notify_errors": self.notifier.errors,  # failed attempts (each retried or given up)
        }
