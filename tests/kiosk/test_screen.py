"""The on-site screen: its server and event stream over real HTTP, its page in headless Chromium."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest
from playwright.sync_api import Browser, Page

from kiosk.errors import ScreenError
from kiosk.policy import MSG_REPEAT, MSG_UNKNOWN, Outcome
from kiosk.screen import HEADLINES, ScreenFeedback, _Hub, compose, split_bilingual
from kiosk.voice import render_clips
from warmcard.command.servers import Mosquitto
from warmcard.contract import Kind, Mode

FAST_HOLD = dict.fromkeys(Outcome, 0.4)


@pytest.fixture
def screen() -> Iterator[ScreenFeedback]:
    feedback = ScreenFeedback(port=0, site="喜洲镇 幸福小院", hold=FAST_HOLD, lost_after_s=0.5)
    feedback.start()
    yield feedback
    feedback.stop()


def read_event(lines: Iterator[str]) -> tuple[str, dict]:
    """The next `event:`/`data:` pair from an SSE line stream (comments and ids skipped)."""
    event, data = "message", None
    for line in lines:
        if line.startswith("event: "):
            event = line[len("event: ") :]
        elif line.startswith("data: "):
            data = json.loads(line[len("data: ") :])
        elif line == "" and data is not None:
            return event, data
    raise AssertionError("stream ended")


# ---------------------------------------------------------------------------- text


@pytest.mark.parametrize(
    ("message", "zh", "en"),
    [
        ("签到成功 · 杨桂英 / Checked in", "签到成功 · 杨桂英", "Checked in"),
        ("杨桂英 已签到 Checked in", "杨桂英 已签到", "Checked in"),
        ("Li Wei 已签退 Checked out", "Li Wei 已签退", "Checked out"),
        ("杨桂英 午餐已取 Lunch served", "杨桂英 午餐已取", "Lunch served"),
        (MSG_UNKNOWN, "未登记的卡，请找工作人员", "Unknown card, please see staff"),
        ("只有中文", "只有中文", ""),
        ("English only", "", "English only"),
        ("", "", ""),
    ],
)
def test_split_bilingual(message: str, zh: str, en: str) -> None:
    assert split_bilingual(message) == (zh, en)


def test_compose_headlines_and_details() -> None:
    success = compose(Outcome.SUCCESS, "杨桂英 已签到 Checked in", Kind.CHECK_IN)
    assert (success["title_zh"], success["title_en"]) == ("杨桂英 已签到", "Checked in")
    assert (success["detail_zh"], success["detail_en"], success["kind"]) == ("", "", "check_in")
    # The policy's generic texts say what the headline says: no detail line repeating it.
    unknown = compose(Outcome.UNKNOWN, MSG_UNKNOWN)
    assert unknown["title_zh"] == HEADLINES[Outcome.UNKNOWN][0]
    assert (unknown["detail_zh"], unknown["detail_en"]) == ("", "")
    assert compose(Outcome.REPEAT, MSG_REPEAT)["detail_zh"] == ""
    # The name stays, the repeated headline goes.
    meal = compose(Outcome.MEAL_REPEAT, "杨桂英 本餐已领 Meal already served")
    assert (meal["title_zh"], meal["detail_zh"], meal["detail_en"]) == ("本餐已领", "杨桂英", "")
    # A fault says what is wrong, for staff.
    fault = compose(Outcome.FAULT, "读卡器故障，请告知工作人员 Reader fault: please tell staff")
    assert fault["title_en"] == "Out of service"
    assert fault["detail_en"] == "Reader fault: please tell staff"
    assert compose(Outcome.SUCCESS)["title_zh"] == "成功"


# ---------------------------------------------------------------------------- server


def test_show_reaches_the_event_stream(screen: ScreenFeedback) -> None:
    with (
        httpx.Client(timeout=5) as client,
        client.stream("GET", f"{screen.url}events") as response,
    ):
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        lines = response.iter_lines()
        event, status = read_event(lines)  # sent on connect: the page's banner is right at once
        assert event == "status"
        assert status["site"] == "喜洲镇 幸福小院"
        assert status["online"] is None

        started = time.perf_counter()
        screen.show(Outcome.SUCCESS, "签到成功 · 杨桂英 / Checked in")
        assert time.perf_counter() - started < 0.05  # show() only queues
        event, tap = read_event(lines)
        assert event == "tap"
        assert tap["outcome"] == "success"
        assert (tap["title_zh"], tap["title_en"]) == ("签到成功 · 杨桂英", "Checked in")

        screen.show_tap(Outcome.MEAL_REPEAT, "杨桂英 本餐已领 Meal already served", None)
        event, tap = read_event(lines)
        assert (event, tap["outcome"], tap["detail_zh"]) == ("tap", "meal_repeat", "杨桂英")

        screen.set_status(online=False, today=7, mode=Mode.CANTEEN)
        event, status = read_event(lines)
        assert event == "status"
        assert (status["online"], status["today"], status["today_zh"]) == (False, 7, "今日供餐")
        screen.set_status(online=False, today=7)  # no change: nothing sent
        screen.show(Outcome.FAULT, "")
        event, tap = read_event(lines)
        assert (event, tap["outcome"], tap["title_zh"]) == ("tap", "fault", "暂停服务 请找工作人员")


def test_static_files_status_and_refusals(screen: ScreenFeedback) -> None:
    page = httpx.get(screen.url)
    assert page.status_code == 200
    assert 'src="/screen.js"' in page.text
    assert "EventSource" in httpx.get(f"{screen.url}screen.js").text
    assert httpx.get(f"{screen.url}status.json").json()["site"] == "喜洲镇 幸福小院"
    assert httpx.get(f"{screen.url}../etc/passwd").status_code == 404
    # DNS rebinding: a foreign page reaching 127.0.0.1 under its own name reads nothing.
    foreign = httpx.get(f"{screen.url}status.json", headers={"Host": "evil.example:8765"})
    assert foreign.status_code == 421
    assert "喜洲镇" not in foreign.text


def test_a_page_that_stops_reading_is_dropped_not_waited_for() -> None:
    hub = _Hub(ScreenFeedback().status)
    stuck = hub.subscribe()
    assert stuck is not None and hub.clients == 1
    started = time.perf_counter()
    for _ in range(200):
        hub.publish("tap", compose(Outcome.SUCCESS, "已签到 Checked in"))
    assert time.perf_counter() - started < 0.5
    assert hub.clients == 0


def test_port_in_use_is_a_clear_error(screen: ScreenFeedback) -> None:
    other = ScreenFeedback(port=screen.port)
    with pytest.raises(ScreenError, match="screen_port"):
        other.start()


# ---------------------------------------------------------------------------- the page


@pytest.fixture
def page(browser: Browser, screen: ScreenFeedback) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 800, "height": 480})  # the 7" DSI panel
    page = context.new_page()
    page.goto(screen.url)
    page.wait_for_function("document.getElementById('site').textContent.length > 0")
    yield page
    context.close()


def wait_connected(screen: ScreenFeedback) -> None:
    deadline = time.monotonic() + 5
    while screen.clients == 0:
        assert time.monotonic() < deadline, "the page never opened its event stream"
        time.sleep(0.02)


def test_page_shows_a_tap_without_reload(screen: ScreenFeedback, page: Page, shots: Path) -> None:
    wait_connected(screen)
    page.evaluate("window.loadedOnce = true")  # gone if the page reloaded
    screen.hold = dict.fromkeys(Outcome, 30.0)  # hold the answer still for the screenshot
    sent_ms = time.time() * 1000
    screen.show(Outcome.SUCCESS, "签到成功 · 杨桂英 / Checked in")
    page.wait_for_function("document.body.dataset.outcome === 'success'", timeout=2000)
    shown_ms = float(page.evaluate("document.body.dataset.shownAt"))
    assert page.evaluate("window.loadedOnce") is True
    assert page.inner_text("#title-zh") == "签到成功 · 杨桂英"
    assert page.inner_text("#title-en") == "Checked in"
    assert page.is_visible(".glyph-success")
    assert not page.is_visible("#idle")
    assert 0 <= shown_ms - sent_ms < 1000, f"show() to screen took {shown_ms - sent_ms:.0f} ms"
    page.screenshot(path=str(shots / "kiosk-screen-success.png"))
    # The next answer replaces it, and after its hold time (0.4 s here) the idle page is back.
    screen.hold = FAST_HOLD
    screen.show(Outcome.REPEAT, MSG_REPEAT)
    page.wait_for_function("document.body.dataset.outcome === 'repeat'", timeout=2000)
    assert page.inner_text("#title-zh") == "已记录"
    page.wait_for_function("document.body.dataset.state === 'idle'", timeout=3000)
    assert page.is_visible("#clock")
    assert page.evaluate("window.loadedOnce") is True


def test_page_unknown_card(screen: ScreenFeedback, page: Page, shots: Path) -> None:
    wait_connected(screen)
    screen.hold = dict.fromkeys(Outcome, 30.0)
    screen.show(Outcome.UNKNOWN, MSG_UNKNOWN)
    page.wait_for_function("document.body.dataset.outcome === 'unknown'", timeout=2000)
    assert page.inner_text("#title-zh") == "未登记的卡 请找工作人员"
    assert page.inner_text("#title-en") == "Card not registered, please see staff"
    assert page.is_visible(".glyph-unknown")
    assert not page.is_visible("#detail")
    page.screenshot(path=str(shots / "kiosk-screen-unknown.png"))


def test_page_offline_banner_and_idle_status(
    screen: ScreenFeedback, page: Page, shots: Path
) -> None:
    wait_connected(screen)
    assert not page.is_visible("#offline")
    screen.set_status(online=False, today=12, mode=Mode.ENTRANCE)
    page.wait_for_selector("#offline", state="visible", timeout=2000)
    assert page.inner_text("#offline") == "离线 · 记录已保存 / Offline · taps are saved"
    assert page.inner_text("#net") == "离线 Offline"
    assert page.inner_text("#today") == "今日签到 12 · 12 check-ins today"
    page.screenshot(path=str(shots / "kiosk-screen-offline.png"))
    screen.set_status(online=True)
    page.wait_for_selector("#offline", state="hidden", timeout=2000)
    assert page.inner_text("#net") == "在线 Online"


@pytest.mark.parametrize("tz", ["Asia/Shanghai", "America/New_York"])
def test_page_clock_is_the_sites_local_time(screen: ScreenFeedback, page: Page, tz: str) -> None:
    screen.set_status(tz=tz)
    now = datetime.now(UTC).astimezone(ZoneInfo(tz))
    expected = {f"{t:%H:%M}" for t in (now, now + timedelta(seconds=2))}
    page.wait_for_function(
        f"{json.dumps(sorted(expected))}.includes(document.getElementById('clock').textContent)",
        timeout=3000,
    )


def test_page_text_is_never_markup(screen: ScreenFeedback, page: Page) -> None:
    wait_connected(screen)
    screen.show(Outcome.SUCCESS, '<img src=x onerror="window.owned=1"> 已签到 Checked in')
    page.wait_for_function("document.body.dataset.outcome === 'success'", timeout=2000)
    assert page.inner_text("#title-zh").startswith("<img")
    assert page.locator("#tap img").count() == 0
    assert page.evaluate("window.owned") is None


def test_page_says_out_of_service_when_the_kiosk_program_stops(
    screen: ScreenFeedback, page: Page
) -> None:
    wait_connected(screen)
    screen.stop()
    page.wait_for_function("document.body.dataset.state === 'lost'", timeout=5000)
    assert "暂停服务" in page.inner_text("#lost")


# ---------------------------------------------------------------------------- warmcard kiosk


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_kiosk_command_serves_the_screen_with_status(
    mosquitto: Mosquitto, topic_prefix: str, tmp_path: Path
) -> None:
    device = f"{topic_prefix}-k1"
    port = free_port()
    voice_dir = tmp_path / "voice"
    render_clips(voice_dir)
    player = tmp_path / "fake-aplay"  # the voice is started and stopped; no tap plays here
    player.write_text("#!/bin/sh\nexit 0\n")
    player.chmod(0o755)
    toml = tmp_path / "kiosk.toml"
    toml.write_text(
        f'device_id = "{device}"\n'
        f'data_dir = "{tmp_path / "data"}"\n'
        f"screen_port = {port}\n"
        'site_name = "喜洲镇 幸福小院"\n'
        "heartbeat_s = 5\n"
        f'voice_dir = "{voice_dir}"\n'
        f'voice_player = ["{player}"]\n'
        "[mqtt]\n"
        f'host = "127.0.0.1"\nport = {mosquitto.port}\n'
        "[initial_config]\n"
        f'device_id = "{device}"\nsite_id = "s-xizhou"\nmode = "entrance"\n'
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "warmcard.command.cli", "kiosk", "--config", str(toml)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 20
        status: dict = {}
        while time.monotonic() < deadline:
            try:
                status = httpx.get(f"http://127.0.0.1:{port}/status.json", timeout=1).json()
            except httpx.TransportError:
                status = {}
            if status.get("online") is True and status.get("today") == 0:
                break
            assert process.poll() is None, process.communicate()[0].decode()
            time.sleep(0.2)
        assert status["online"] is True, status
        assert status["today"] == 0
        assert status["site"] == "喜洲镇 幸福小院"
        assert status["today_zh"] == "今日签到"
    finally:
        process.send_signal(signal.SIGTERM)
        output = process.communicate(timeout=20)[0].decode()
    assert process.returncode == 0, output
