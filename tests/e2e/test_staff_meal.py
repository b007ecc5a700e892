"""The canteen staff's path, on real parts: a staff member enrolled in the registry (people.csv
role = staff) taps a staff card at the canteen kiosk; the touch list in Chromium opens; one touch
records the elder's meal; it travels kiosk -> Mosquitto -> `warmcard ingest` -> InfluxDB and the
console's monthly report counts it as recorded by hand."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import Browser

from cloud_ingest.console.roles import Role as ConsoleRole
from firmware_gateway.readers.sim import SimReader
from firmware_gateway.settings import GatewaySettings
from firmware_gateway.uplink import UplinkTiming
from kiosk.feedback import LogFeedback, MultiFeedback
from kiosk.runtime import Kiosk
from kiosk.screen import ScreenFeedback
from tests.support.console import add_user, logged_in, place_sites
from tests.support.ingest import (
    TZ,
    import_registry_csv,
    local_ingest,
    wait_for,
    write_registry,
)
from warmcard.command.servers import InfluxD, Ingest, Mosquitto
from warmcard.contract import Kind, Role
from warmcard.settings import MqttSettings

FAST = UplinkTiming(backoff_min_s=0.05, backoff_max_s=0.5, idle_wait_s=0.1, drain_s=1.0)
STAFF_CARD = "04FFEE01"


@pytest.fixture
def canteen(
    tmp_path: Path, mosquitto: Mosquitto, influxd: InfluxD, influx_db: str, topic_prefix: str
) -> Iterator[tuple[Kiosk, ScreenFeedback, Ingest, dict[str, str]]]:
    ids = write_registry(tmp_path, topic_prefix)
    (tmp_path / "people.csv").write_text(
        f"person_id,display_name,site_id,role\nS0001,王师傅,{ids['site_a']},staff\n",
        encoding="utf-8",
    )
    (tmp_path / "cards.csv").write_text(f"card_uid,person_id\n{STAFF_CARD},S0001\n")
    import_registry_csv(tmp_path / "registry.sqlite3", tmp_path, "people", "cards")
    console = tmp_path / "console.sqlite3"
    place_sites(console, {ids["site_a"]: "dali/dali-city/xizhou"})
    add_user(console, "head.xizhou", ConsoleRole.ADMIN, "dali/dali-city/xizhou")
    with local_ingest(
        tmp_path, mosquitto, influxd, influx_db, topic_prefix, console_db=console
    ) as ingest:
        yield from _kiosk(tmp_path, mosquitto, ingest, ids)


def _kiosk(
    tmp_path: Path, mosquitto: Mosquitto, ingest: Ingest, ids: dict[str, str]
) -> Iterator[tuple[Kiosk, ScreenFeedback, Ingest, dict[str, str]]]:
    screen = ScreenFeedback(port=0).start()
    kiosk = Kiosk(
        GatewaySettings(
            device_id=ids["canteen_a"],
            data_dir=tmp_path / "kiosk",
            mqtt=MqttSettings(port=mosquitto.port),
            heartbeat_s=1.0,
            min_free_bytes=1024 * 1024,
        ),
        SimReader(),
        MultiFeedback(LogFeedback(), screen),
        rng=random.Random(1),
        timing=FAST,
        tick_s=0.1,
    )
    screen.attach(kiosk)
    kiosk.start()
    try:
        assert kiosk.wait_ready(30), "no config and roster from ingest"
        yield kiosk, screen, ingest, ids
    finally:
        kiosk.stop()
        screen.stop()


def test_staff_card_touch_list_meal_counted_as_manual_in_the_report(
    canteen: tuple[Kiosk, ScreenFeedback, Ingest, dict[str, str]], browser: Browser
) -> None:
    kiosk, screen, ingest, _ = canteen
    # The cloud's roster marks the staff card, and only it.
    roster = kiosk.roster
    assert roster is not None
    assert [e.card_uid for e in roster.entries if e.role is Role.STAFF] == [STAFF_CARD]
    assert kiosk.config is not None and kiosk.config.site_name == "喜洲幸福小院"
    context = browser.new_context(viewport={"width": 800, "height": 480})
    try:
        page = context.new_page()
        page.goto(screen.url)
        wait_for(lambda: screen.clients > 0)
        kiosk.handle_tap(STAFF_CARD)
        page.wait_for_function("document.body.dataset.listed === '6'", timeout=5000)
        page.fill("#staff-search", "长者3")
        page.click("#staff-list .person")
        page.wait_for_function("document.body.dataset.outcome === 'success'", timeout=5000)
        assert page.inner_text("#title-zh").endswith("已取（补录）")
    finally:
        context.close()
    (event,) = kiosk.outbox.events_since(0)
    assert (event.kind, event.person_id, event.manual, event.witness_card) == (
        Kind.MEAL,
        "P0003",
        True,
        STAFF_CARD,
    )
    wait_for(lambda: kiosk.outbox.depth() == 0, timeout=30)
    today = datetime.now(ZoneInfo(TZ)).date()
    params = {"area": "dali/dali-city/xizhou", "month": f"{today:%Y-%m}"}
    head = logged_in(ingest.url, "head.xizhou")
    try:

        def report() -> dict:
            doc: dict = head.get("/api/v1/reports/monthly", params=params).json()
            return doc if doc["meals_total"] else {}

        doc = wait_for(report, timeout=30)
        day = next(d for d in doc["days"] if d["date"] == today.isoformat())
        assert (doc["meals_total"], doc["manual_total"]) == (1, 1)
        assert (day["meals_total"], day["manual"]) == (1, 1)
        page_html = head.get("/reports", params=params).text
        assert 'data-stat="manual">1<' in page_html and "其中补录" in page_html
    finally:
        head.close()
