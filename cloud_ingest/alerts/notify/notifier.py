"""The notifier: one per console, on its own thread, so the alert engine never waits on a robot
or a mail server.

Every `poll_s` (or at once when woken, e.g. by "send test"): queue a message for each new alert
and each target whose area holds it, then send what is due. A failed attempt waits the next of
`retry_s` (5 s, 30 s, 2 min, 10 min, 1 h by default), then the delivery is marked failed. Every
attempt is logged. Any number of consoles may run one: the store's claims keep each delivery to
one sender.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from cloud_ingest.alerts.notify.channels import SmtpSender, WebhookSender
from cloud_ingest.alerts.notify.message import Names, compose, compose_test
from cloud_ingest.alerts.notify.settings import NotifySettings
from cloud_ingest.alerts.notify.store import Delivery, NotifyStore, Outgoing, Target
from cloud_ingest.alerts.notify.targets import recipients
from cloud_ingest.errors import DeliveryError
from cloud_ingest.registry.store import Registry

log = logging.getLogger(__name__)

US = 1_000_000
PRUNE_EVERY_US = 3600 * US
DAY_US = 86_400 * US
FAILED_ROUND_WAIT_S = 10.0


class Notifier:
    def __init__(
        self,
        settings: NotifySettings,
        store: NotifyStore,
        registry: Registry,
        *,
        holder: str,
        webhook: WebhookSender,
        email: SmtpSender,
        clock: Callable[[], int],
    ) -> None:
        self.settings = settings
        self.store = store
        self.registry = registry
        self.holder = holder
        self.webhook = webhook
        self.email = email
        self.clock = clock
        self.sent = 0
        self.errors = 0
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pruned_us = 0

    # ------------------------------------------------------------------ one round

    def enqueue_new(self) -> int:
        """Queue a delivery per new alert and matching target (worded when sent); returns how
        many were queued."""
        cursor, alerts = self.store.new_alerts()
        if not alerts:
            return 0
        targets = self.store.targets()
        outgoing = [Outgoing(a.id, t) for a in alerts for t in targets if t.wants(a)]
        return self.store.enqueue(outgoing, max(cursor, alerts[-1].id), self.clock())

    @property
    def batch(self) -> int:
        """Deliveries claimed at a time: even if each takes its whole timeout, the batch is sent
        within half the lease, so no other console takes one over while it is still queued here."""
        s = self.settings
        slowest = max(s.smtp.timeout_s, s.webhook_timeout_s)
        return max(1, int(s.lease_s / (2 * slowest)))

    def deliver_due(self) -> list[str]:
        """Send what is due now, a batch at a time; returns each delivery's status."""
        settled: list[str] = []
        while not self._stop.is_set():
            done = self._deliver_batch()
            settled += done
            if len(done) < self.batch:
                break
        return settled

    def _deliver_batch(self) -> list[str]:
        lease = int(self.settings.lease_s * US)
        retry = [int(s * US) for s in self.settings.retry_s]
        settled = []
        claimed = self.store.claim(self.holder, self.clock(), lease, limit=self.batch)
        names = Names.read(self.registry, [d.alert for d in claimed if d.alert])
        for d in claimed:
            started = self.clock()
            error = self._send(d, names)
            status = self.store.record(
                d, self.holder, error=error, started_us=started, finished_us=self.clock(),
                retry_us=retry,
            )  # fmt: skip
            if error is None:
                self.sent += 1
            else:
                self.errors += 1
                log.warning("notification %d to %s: attempt %d: %s", d.id, d.channel,
                            d.attempts + 1, error)  # fmt: skip
            settled.append(status)
        return settled

    def _send(self, d: Delivery, names: Names) -> str | None:
        if d.target_gone:
            return "目标已删除 target removed"
        if d.alert_gone:
            return (
                "告警已删除（人员已删除或超过保留期） alert deleted (person erased, or retention)"
            )
        subject, body = d.subject, d.body
        if d.alert is not None:
            subject, body = compose(d.alert, names, self.settings.console_url)
        try:
            if d.channel == "webhook":
                self.webhook.send(d.address, d.secret, body)
            else:
                self.email.send(recipients(d.address), subject, body)
        except DeliveryError as exc:
            return str(exc)
        except Exception as exc:  # a bug here must not stop the queue; the log shows it
            log.exception("notification %d failed unexpectedly", d.id)
            return f"internal error: {type(exc).__name__}: {exc}"
        return None

    def round(self) -> None:
        self.enqueue_new()
        self.deliver_due()
        now = self.clock()
        if now - self._pruned_us >= PRUNE_EVERY_US:
            self._pruned_us = now
            self.store.prune(now - int(self.settings.log_days * DAY_US))

    # ------------------------------------------------------------------ the console's button

    def send_test(
        self, target: Target, username: str, area_name: tuple[str, str] | None = None
    ) -> None:
        """Queue a test message to `target` and send it now (on the notifier's thread);
        `area_name` is the (zh, en) name of its area, else its path is said."""
        now = self.clock()
        name = area_name or (target.area_path or "/", target.area_path or "/")
        subject, body = compose_test(name, username, now, self.settings.console_url)
        self.store.enqueue([Outgoing(None, target, subject, body)], None, now)
        self._wake.set()

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="notify", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            wait = self.settings.poll_s
            try:
                self.round()
            except Exception:
                wait = max(wait, FAILED_ROUND_WAIT_S)  # e.g. the database is down: no log flood
                log.exception("notification round failed; retrying in %.0f s", wait)
            self._wake.wait(wait)
            self._wake.clear()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(30)
        self.webhook.client.close()
        self.store.close()
