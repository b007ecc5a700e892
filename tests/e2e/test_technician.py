"""The technician's path, on real parts: the installer in a throwaway root, then `warmcard doctor`
on what it installed: the PN532 emulator as the reader, gpiozero's mock pins, the screen with
Chromium connecting to it, the speaker (an ALSA device that records what it plays), a local
broker that checks the device's password, and a local ingest that has registered the device.
Every check passes."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser

from firmware_gateway.doctor import DoctorDeps, Status, run_doctor
from firmware_gateway.pn532.emulator import PN532Emulator
from kiosk.doctor_checks import KIOSK_CHECKS
from kiosk.gpio_feedback import PATTERNS
from tests.support.fakeroot import install, make_root
from tests.support.ingest import local_ingest, password_file, write_registry
from warmcard.command.servers import InfluxD, Ingest, Mosquitto, free_port

ASOUNDRC = """pcm.warmcard_speaker {{
    type file
    slave.pcm "null"
    file "{played}"
    format "raw"
}}
"""


@pytest.fixture
def broker(tmp_path: Path, topic_prefix: str) -> Iterator[Mosquitto]:
    """A broker that knows the kiosk's password (what `warmcard provision` hands out); ingest
    connects anonymously here."""
    run_dir = tmp_path / "broker"
    run_dir.mkdir()
    passwords = password_file(run_dir, f"{topic_prefix}-canteen-a", "pw-0123")
    extra = f"allow_anonymous true\npassword_file {passwords}\n"
    with Mosquitto(run_dir, extra_conf=extra) as server:
        yield server


@pytest.fixture
def ingest(
    tmp_path: Path, broker: Mosquitto, influxd: InfluxD, influx_db: str, topic_prefix: str
) -> Iterator[tuple[Ingest, dict[str, str]]]:
    ids = write_registry(tmp_path, topic_prefix)
    with local_ingest(tmp_path, broker, influxd, influx_db, topic_prefix) as server:
        yield server, ids


def test_installer_then_doctor_all_pass(
    tmp_path: Path,
    broker: Mosquitto,
    ingest: tuple[Ingest, dict[str, str]],
    browser: Browser,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _, ids = ingest
    device = ids["canteen_a"]
    root = make_root(tmp_path / "root")
    home = tmp_path / "home"
    home.mkdir()
    played = home / "played.raw"
    (home / ".asoundrc").write_text(ASOUNDRC.format(played=played))
    monkeypatch.setenv("HOME", str(home))  # aplay reads ~/.asoundrc
    secret = tmp_path / "device.pw"
    secret.write_text("pw-0123\n")
    with PN532Emulator() as emulator:
        done = install(
            root, "--device-id", device, "--broker", f"127.0.0.1:{broker.port}",
            "--mqtt-password-file", str(secret),
            "--reader", f"pn532:{emulator.path}", "--audio-device", "warmcard_speaker",
        )  # fmt: skip
        assert done.returncode == 0, done.stdout + done.stderr
        # The installed config as is; only where the root's files are, and a free screen port
        # (8765 may be taken on a shared test machine), come from the environment.
        port = free_port()
        monkeypatch.setenv("WARMCARD_DATA_DIR", str(root / "var/lib/warmcard"))
        monkeypatch.setenv("WARMCARD_VOICE_DIR", str(root / "var/lib/warmcard/voice"))
        monkeypatch.setenv("WARMCARD_SCREEN_PORT", str(port))
        monkeypatch.setenv("GPIOZERO_PIN_FACTORY", "mock")

        said: list[str] = []

        def say(text: str) -> None:
            said.append(text)
            if "Tap a card now" in text:
                emulator.present("04A1B201")  # the technician taps when asked

        deps = DoctorDeps(
            say=say,
            patterns=tuple(PATTERNS.values()),
            ntp_synchronized=lambda: True,  # this machine's NTP state is not the kiosk's
            broker_timeout_s=10.0,
            screen_wait_s=20.0,
        )
        results: list = []
        doctor = threading.Thread(
            target=lambda: results.extend(
                run_doctor(
                    root / "etc/warmcard/kiosk.toml",
                    deps,
                    tap=True,
                    tap_timeout_s=10,
                    extra=KIOSK_CHECKS,
                )
            )
        )
        doctor.start()
        # The kiosk's Chromium, as the autostart entry opens it, finds the doctor's page.
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(f"http://127.0.0.1:{port}/status.json", timeout=1)
                break
            except httpx.TransportError:
                assert doctor.is_alive() and time.monotonic() < deadline, said
                time.sleep(0.1)
        context = browser.new_context(viewport={"width": 800, "height": 480})
        try:
            context.new_page().goto(f"http://127.0.0.1:{port}/")
            doctor.join(120)
        finally:
            context.close()
    assert not doctor.is_alive()
    lines = [line for r in results for line in r.lines()]
    assert [r.status for r in results] == [Status.PASS] * len(results), "\n".join(lines)
    names = [r.name for r in results]
    assert names == [
        "配置 Config", "读卡器 Reader", "刷卡 Live read", "灯和蜂鸣器 LEDs and buzzer",
        "屏幕 Screen", "喇叭 Speaker", "时钟 Clock", "存储 Outbox disk", "服务器 Broker",
        "云端登记 Registered in the cloud",
    ]  # fmt: skip
    by_name = {r.name: r for r in results}
    assert "1 个浏览器已连接" in by_name["屏幕 Screen"].detail
    assert "warmcard_speaker" in by_name["喇叭 Speaker"].detail
    assert played.stat().st_size > 16000  # the check_in prompt really went to the device
    assert "喜洲幸福小院" in by_name["云端登记 Registered in the cloud"].detail
    assert "04A1B201" in by_name["刷卡 Live read"].detail
    assert f"as {device}" in by_name["服务器 Broker"].detail  # its own credentials
