"""Each answer as the elder meets it: a real kiosk taps, the page in Chromium at 800 x 480 shows
it (screenshot checked for the outcome's colour and for text that fits), and the prompt played is
a real espeak-ng clip short enough for the next tap of a lunch queue."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page

from firmware_gateway.clock import ManualClock
from firmware_gateway.readers.sim import SimReader
from firmware_gateway.settings import GatewaySettings
from kiosk.feedback import MultiFeedback
from kiosk.policy import Outcome
from kiosk.runtime import Kiosk
from kiosk.screen import ScreenFeedback
from kiosk.voice import CLIPS, MAX_CLIP_S, VoiceFeedback, render_clips, wav_seconds
from tests.kiosk.test_voice import fake_player, wait_lines
from tests.support.png import png_size, share_of_colour
from warmcard.contract import DeviceConfig, Mode, Role, Roster, RosterEntry
from warmcard.settings import MqttSettings

YANG = RosterEntry(card_uid="04A1B2C3D4E5F6", person_id="p-0001", display_name="杨桂英")
WANG = RosterEntry(card_uid="04FFEE01", person_id="s-0001", display_name="王师傅", role=Role.STAFF)
STRANGER = "04BADBAD"
LUNCH = "2026-03-02T04:00:00.000000Z"  # 12:00 in Dali
# The page's background for each answer (kiosk/static/screen.css).
COLOURS = {
    "success": (0x0B, 0x7A, 0x35),
    "repeat": (0x14, 0x51, 0xB0),
    "unknown": (0xFF, 0x91, 0x00),
    "meal_repeat": (0xC4, 0x1C, 0x1C),
    "fault": (0x3A, 0x3F, 0x44),
    "staff": (0x10, 0x24, 0x3E),
}


def test_every_rendered_prompt_is_short(tmp_path: Path) -> None:
    """Measured on the WAVs espeak-ng renders: under the docs' 4 s, with our margin (3 s)."""
    durations = {path.stem: wav_seconds(path) for path in render_clips(tmp_path)}
    assert sorted(durations) == sorted(CLIPS)
    for name, seconds in durations.items():
        assert 0.5 < seconds < MAX_CLIP_S < 4.0, f"{name}: {seconds:.2f} s"
    assert (tmp_path / "unknown.wav").stat().st_mode & 0o777 == 0o640  # the group can play it


@dataclass
class Site:
    kiosk: Kiosk
    screen: ScreenFeedback
    page: Page
    played: Path
    clips: Path


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("voice")
    render_clips(out)
    return out


def open_site(
    browser: Browser, tmp_path: Path, clips: Path, mode: Mode, **settings: Any
) -> Iterator[Site]:
    screen = ScreenFeedback(port=0, site="喜洲幸福小院", hold=dict.fromkeys(Outcome, 60.0)).start()
    player, played = fake_player(tmp_path, play_s=0.05)
    voice = VoiceFeedback(clips, player).start()
    config = DeviceConfig(device_id="elder-k1", site_id="s-xizhou", mode=mode, debounce_s=5)
    kiosk = Kiosk(
        GatewaySettings(
            device_id="elder-k1",
            data_dir=tmp_path / "data",
            mqtt=MqttSettings(host="127.0.0.1", port=1),  # never started: no broker needed
            initial_config=config,
            **settings,
        ),
        SimReader(),
        MultiFeedback(screen, voice),
        ManualClock(LUNCH),
    )
    kiosk.apply_roster(Roster(site_id="s-xizhou", version="1", entries=[YANG, WANG]))
    screen.attach(kiosk)
    context = browser.new_context(viewport={"width": 800, "height": 480})  # the 7" DSI panel
    page = context.new_page()
    page.goto(screen.url)
    page.wait_for_function("document.getElementById('site').textContent.length > 0")
    try:
        yield Site(kiosk, screen, page, played, clips)
    finally:
        context.close()
        voice.stop()
        screen.stop()
        kiosk.outbox.close()


@pytest.fixture
def entrance(browser: Browser, tmp_path: Path, clips: Path) -> Iterator[Site]:
    yield from open_site(browser, tmp_path, clips, Mode.ENTRANCE)


@pytest.fixture
def canteen(browser: Browser, tmp_path: Path, clips: Path) -> Iterator[Site]:
    yield from open_site(browser, tmp_path, clips, Mode.CANTEEN)


def answer(site: Site, card: str, outcome: str, clip: str, shot: Path, count: int) -> str:
    """Tap, then check the screen and the voice as the elder meets them; the main line."""
    before = site.page.evaluate("document.body.dataset.shownAt || ''")
    site.kiosk.handle_tap(card)
    site.page.wait_for_function(
        f"document.body.dataset.outcome === '{outcome}' && "
        f"document.body.dataset.shownAt !== '{before}'",
        timeout=3000,
    )
    site.page.wait_for_timeout(150)  # fonts and layout settle before the picture
    image = site.page.screenshot(path=str(shot))
    assert png_size(image) == (800, 480)
    share = share_of_colour(image, COLOURS[outcome])
    assert share > 0.4, f"{outcome}: its colour covers only {share:.0%} of the screen"
    main = "#staff .staff-title" if outcome == "staff" else "#title-zh"
    box = site.page.locator(main).bounding_box()
    assert box is not None and box["x"] >= 0 and box["y"] >= 0
    assert box["x"] + box["width"] <= 800 and box["y"] + box["height"] <= 480, f"{main} overflows"
    line = wait_lines(site.played, count)[-1]
    assert line.endswith(f"/{clip}.wav"), line
    assert wav_seconds(site.clips / f"{clip}.wav") < MAX_CLIP_S
    return site.page.inner_text(main)


def test_at_the_entrance(entrance: Site, shots: Path) -> None:
    s = entrance
    assert answer(
        s, YANG.card_uid, "success", "check_in", shots / "kiosk-elder-check-in.png", 1
    ) == ("杨桂英 已签到")
    main = answer(s, YANG.card_uid, "repeat", "repeat", shots / "kiosk-elder-repeat.png", 2)
    assert main == "已记录"
    assert isinstance(s.kiosk.clock, ManualClock)
    s.kiosk.clock.advance(60)
    main = answer(s, YANG.card_uid, "success", "check_out", shots / "kiosk-elder-check-out.png", 3)
    assert main == "杨桂英 已签退"
    main = answer(s, STRANGER, "unknown", "unknown", shots / "kiosk-elder-unknown.png", 4)
    assert main == "未登记的卡 请找工作人员"


def test_at_the_canteen(canteen: Site, shots: Path) -> None:
    s = canteen
    main = answer(s, YANG.card_uid, "success", "meal", shots / "kiosk-elder-meal.png", 1)
    assert main == "杨桂英 午餐已取"  # the meal's name in Chinese on the main line
    assert s.page.inner_text("#title-en") == "Lunch served"
    assert isinstance(s.kiosk.clock, ManualClock)
    s.kiosk.clock.advance(60)
    main = answer(
        s, YANG.card_uid, "meal_repeat", "meal_repeat", shots / "kiosk-elder-meal-repeat.png", 2
    )
    assert main == "本餐已领" and s.page.inner_text("#detail-zh") == "杨桂英"
    main = answer(s, WANG.card_uid, "staff", "staff", shots / "kiosk-staff-list.png", 3)
    assert "补录用餐" in main and "午餐" in main


def test_fault_when_the_disk_is_full(
    browser: Browser, tmp_path: Path, clips: Path, shots: Path
) -> None:
    for s in open_site(browser, tmp_path, clips, Mode.ENTRANCE, min_free_bytes=1 << 62):
        main = answer(s, YANG.card_uid, "fault", "fault", shots / "kiosk-elder-fault.png", 1)
        assert main == "暂停服务 请找工作人员"
        assert "存储已满" in s.page.inner_text("#detail-zh")
