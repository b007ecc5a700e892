"""Notifications: an alert pushed to the people of its area by group-robot webhook and e-mail.

Targets are set per area in the console (/alerts/notify); the SMTP server and timings in
`[notify]` (settings). `notifier` queues and sends on the console's own thread, `store` keeps
targets, queue and log in the alerts store, `message` says it, `channels` sends it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx

from cloud_ingest.alerts.notify.channels import SmtpSender, WebhookSender
from cloud_ingest.alerts.notify.notifier import Notifier
from cloud_ingest.alerts.notify.settings import NotifySettings
from cloud_ingest.alerts.notify.store import NotifyStore
from cloud_ingest.registry.store import Registry

__all__ = ["Notifier", "NotifySettings", "NotifyStore", "open_notifier"]


def open_notifier(
    settings: NotifySettings,
    location: Path | str,
    registry: Registry,
    *,
    holder: str,
    clock: Callable[[], int],
) -> Notifier:
    """A console's notifier on the alerts store at `location` (not started)."""
    client = httpx.Client(timeout=settings.webhook_timeout_s, follow_redirects=False)
    return Notifier(
        settings,
        NotifyStore(location),
        registry,
        holder=holder,
        webhook=WebhookSender(client, lambda: clock() // 1000),
        email=SmtpSender(settings.smtp),
        clock=clock,
    )
