"""A forgotten card is not a lost meal: a staff card opens the list, one touch records the meal,
marked manual with the staff card as witness, committed to the outbox like any tap."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser

from firmware_gateway.clock import ManualClock
from kiosk.policy import Outcome, Policy
from kiosk.policy.roster import RosterIndex
from kiosk.runtime import STAFF_SESSION_S
from kiosk.screen import TOKEN_HEADER
from tests.kiosk.test_elder_answers import WANG, YANG, Site, open_site
from warmcard.contract import DeviceConfig, Kind, MealPeriod, Mode, Roster, RosterEntry
from warmcard.timestamps import parse_ts

LI = RosterEntry(card_uid="04A1B2C4", person_id="p-0002", display_name="李秀英")
LI_2ND = RosterEntry(card_uid="04A1B2C5", person_id="p-0002", display_name="李秀英")
NOON = parse_ts("2026-03-02T04:00:00.000000Z")


def test_policy_staff_card_opens_the_list_and_manual_meals_follow_the_meal_rule() -> None:
    roster = Roster(site_id="s-1", version="1", entries=[YANG, LI, LI_2ND, WANG])
    policy = Policy(
        DeviceConfig(device_id="k-1", site_id="s-1", mode=Mode.CANTEEN), RosterIndex(roster).lookup
    )
    opened = policy.decide(WANG.card_uid, NOON)
    assert (opened.outcome, opened.kind, opened.meal_period) == (
        Outcome.STAFF,
        None,
        MealPeriod.LUNCH,
    )
    listed = policy.meal_list(roster.entries, NOON)
    assert [(e.display_name, served) for e, served in listed] == [
        ("李秀英", False),
        ("杨桂英", False),
    ]
    meal = policy.decide_manual(YANG, WANG, NOON)
    assert (meal.kind, meal.outcome, meal.manual, meal.witness_card) == (
        Kind.MEAL,
        Outcome.SUCCESS,
        True,
        WANG.card_uid,
    )
    assert (
        meal.card_uid == YANG.card_uid
        and meal.message == "杨桂英 午餐已取（补录） Lunch served (recorded by staff)"
    )
    refused = policy.decide_manual(WANG, WANG, NOON)  # staff are not served from the list
    assert refused.kind is None and refused.outcome is Outcome.UNKNOWN
    assert policy.decide_manual(None, WANG, NOON).kind is None
    # At an entrance a staff card is any card: check in.
    gate = Policy(
        DeviceConfig(device_id="k-2", site_id="s-1", mode=Mode.ENTRANCE), RosterIndex(roster).lookup
    )
    assert gate.decide(WANG.card_uid, NOON).kind is Kind.CHECK_IN


@pytest.fixture
def canteen(browser: Browser, tmp_path: Path) -> Iterator[Site]:
    from kiosk.voice import render_clips

    clips = tmp_path / "voice"
    render_clips(clips)
    for site in open_site(browser, tmp_path, clips, Mode.CANTEEN):
        site.kiosk.apply_roster(Roster(site_id="s-xizhou", version="2", entries=[YANG, LI, WANG]))
        yield site


def test_staff_card_touch_list_records_a_manual_meal(canteen: Site, shots: Path) -> None:
    s = canteen
    s.kiosk.handle_tap(WANG.card_uid)
    s.page.wait_for_function("document.body.dataset.listed === '2'", timeout=3000)
    buttons = s.page.locator("#staff-list .person")
    assert buttons.all_inner_texts() == ["李秀英", "杨桂英"]
    box = buttons.first.bounding_box()
    assert box is not None and box["width"] >= 200 and box["height"] >= 70  # a finger's target
    s.page.fill("#staff-search", "杨")  # search by name
    assert s.page.locator("#staff-list .person").all_inner_texts() == ["杨桂英"]
    s.page.screenshot(path=str(shots / "kiosk-staff-search.png"))
    s.page.click("#staff-list .person")
    s.page.wait_for_function("document.body.dataset.outcome === 'success'", timeout=3000)
    assert s.page.inner_text("#title-zh") == "杨桂英 午餐已取（补录）"
    s.page.screenshot(path=str(shots / "kiosk-staff-recorded.png"))
    (event,) = s.kiosk.outbox.events_since(0)
    assert (event.kind, event.person_id, event.card_uid) == (Kind.MEAL, "p-0001", YANG.card_uid)
    assert event.manual and event.witness_card == WANG.card_uid
    assert json.loads(event.to_bytes())["witness_card"] == WANG.card_uid
    # One touch, one meal: the session is closed; a second meal needs a staff card again.
    assert s.kiosk.meal_list() is None
    assert s.kiosk.record_manual("p-0002").kind is None
    # The same "already served" rule: the list marks her, and recording again warns.
    s.kiosk.handle_tap(WANG.card_uid)
    s.page.wait_for_function("document.body.dataset.state === 'staff'", timeout=3000)
    s.page.wait_for_selector("#staff-list .person.served", timeout=3000)
    assert s.page.inner_text("#staff-list .person.served") == "杨桂英\n已领 served"
    s.page.click("#staff-list .person.served")
    s.page.wait_for_function("document.body.dataset.outcome === 'meal_repeat'", timeout=3000)
    assert s.kiosk.outbox.events_since(0)[-1].kind is Kind.MEAL_REPEAT


def test_staff_list_expires_and_any_other_tap_closes_it(canteen: Site) -> None:
    s = canteen
    clock = s.kiosk.clock
    assert isinstance(clock, ManualClock)
    s.kiosk.handle_tap(WANG.card_uid)
    assert s.kiosk.meal_list() is not None
    clock.advance(STAFF_SESSION_S + 1)
    assert s.kiosk.meal_list() is None
    s.kiosk.handle_tap(WANG.card_uid)
    s.kiosk.handle_tap(LI.card_uid)  # an elder's own card: her meal, and the list closes
    assert s.kiosk.meal_list() is None
    assert [e.manual for e in s.kiosk.outbox.events_since(0)] == [False]


def test_only_the_kiosks_own_page_may_record(canteen: Site) -> None:
    s = canteen
    s.kiosk.handle_tap(WANG.card_uid)
    url = s.screen.url + "staff/meal"
    body = {"person_id": "p-0001"}
    token = s.page.evaluate("token")  # what the page learnt from its event stream
    assert token
    assert httpx.post(url, json=body).status_code == 403  # no token
    assert httpx.post(url, json=body, headers={TOKEN_HEADER: "guess"}).status_code == 403
    foreign = {TOKEN_HEADER: token, "Origin": "http://evil.example"}
    assert httpx.post(url, json=body, headers=foreign).status_code == 403
    assert httpx.get(s.screen.url + "staff/list", headers={TOKEN_HEADER: "x"}).status_code == 403
    assert b"token" not in httpx.get(s.screen.url + "status.json").content
    bad = httpx.post(url, content=b"{not json", headers={TOKEN_HEADER: token})
    assert bad.status_code == 400 and "Bad request" in bad.json()["error"]
    assert s.kiosk.outbox.events_since(0) == []  # nothing recorded by any of these
    ok = httpx.post(url, json=body, headers={TOKEN_HEADER: token})
    assert ok.status_code == 200 and ok.json()["outcome"] == "success"
    again = httpx.post(url, json=body, headers={TOKEN_HEADER: token})
    assert again.status_code == 409 and "staff card" in again.json()["message"]
