# mypy: allow-untyped-defs
"""Times people read are the site's local time, 24-hour (2026-11-30 11:39), never the wire's
UTC (2026-11-30T03:39:09.860305Z): the enrol page, a person's card history, a site's kiosks
and the audit log, in headless Chromium against the real console and a real kiosk."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from playwright.sync_api import Browser, Page

from tests.support.console import LiveConsole, browser_login, kiosk
from tests.support.ingest import TZ

# Any ISO 8601 date-time with the T (UTC 'Z' or an offset): the machine form, not for people.
ISO_TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}")
LOCAL_MINUTE = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}")


def minutes_since(start: datetime) -> set[str]:
    """Every local minute from `start` to now, as the console writes them."""
    now = datetime.now(ZoneInfo(TZ))
    out, t = set(), start.replace(second=0, microsecond=0)
    while t <= now:
        out.add(t.strftime("%Y-%m-%d %H:%M"))
        t += timedelta(minutes=1)
    return out


def shown_minute(text: str) -> str:
    found = LOCAL_MINUTE.search(text)
    assert found, f"no local time (YYYY-MM-DD HH:MM) in {text!r}"
    return found.group(0)


def no_iso_time(page: Page) -> None:
    body = page.inner_text("body")
    assert not ISO_TIME.search(body), f"a machine time reached the page: {ISO_TIME.search(body)}"


def test_enrol_person_site_and_audit_pages_show_local_time(
    browser: Browser, console: LiveConsole, mosquitto: Any
) -> None:
    gate, site = console.ids["gate_a"], console.ids["site_a"]
    uid = "04C0FFEE5A1B77"
    started = datetime.now(ZoneInfo(TZ))
    with kiosk(console, gate, mosquitto.port) as (_gateway, reader):
        page = browser_login(browser, console.url, "mgr-a", path=f"/registry/devices/{gate}/enrol")
        with page.expect_navigation():
            page.click("#enrol-start button")
        page.locator("#enrol-state", has_text="录入中").wait_for()
        until = shown_minute(page.inner_text("#enrol-state"))
        expected_until = {
            (datetime.strptime(m, "%Y-%m-%d %H:%M") + timedelta(minutes=10)).strftime(
                "%Y-%m-%d %H:%M"
            )
            for m in minutes_since(started)
        }
        assert until in expected_until  # 10 minutes from now, local

        reader.tap(uid)
        capture = page.locator('#captures [data-known="false"]', has_text=uid)
        capture.wait_for(timeout=15_000)
        assert shown_minute(capture.inner_text()) in minutes_since(started)
        no_iso_time(page)
        capture.locator("input.pick").fill("P0003")
        capture.locator('button.pick-person[data-person="P0003"]').click()
        page.locator('#captures [data-assigned="P0003"]').wait_for()

        page.goto(f"{console.url}/registry/people/P0003")
        history = page.locator("#history tr", has_text=uid).inner_text()
        assert shown_minute(history) in minutes_since(started)
        no_iso_time(page)

        page.goto(f"{console.url}/sites/{site}")
        heartbeat = page.locator(f'#kiosks tr:has-text("{gate}") td').nth(2)
        heartbeat.filter(has_text=LOCAL_MINUTE).wait_for(timeout=15_000)
        assert shown_minute(heartbeat.inner_text()) in minutes_since(started)
        no_iso_time(page)
        assert page.errors == []  # type: ignore[attr-defined]
        page.context.close()

    admin = browser_login(browser, console.url, "root-admin", path="/audit")
    enrol_row = admin.locator('#audit tbody tr[data-action="enrol"]').first
    assert shown_minute(enrol_row.inner_text()) in minutes_since(started)
    assert re.search(r" \d{2}:\d{2}:\d{2}\b", enrol_row.inner_text())  # 24-hour, seconds
    no_iso_time(admin)
    assert admin.errors == []  # type: ignore[attr-defined]
    admin.context.close()
