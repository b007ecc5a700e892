"""The kiosk's own `warmcard doctor` checks: the on-site screen and the speaker.

They live here, not in firmware_gateway.doctor, because the screen and the voice are the kiosk's;
`warmcard` hands them to the doctor (`KIOSK_CHECKS`).
"""

from __future__ import annotations

import json
import re
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from firmware_gateway.doctor import CheckResult, DoctorDeps, ExtraCheck, Status
from firmware_gateway.settings import GatewaySettings
from kiosk.errors import ScreenError
from kiosk.screen import ScreenFeedback
from kiosk.voice import CLIPS, VoiceFeedback, play_clip

SCREEN = "屏幕 Screen"
SPEAKER = "喇叭 Speaker"
SCREEN_FIX = (
    "确认桌面自动登录并重启 check desktop autologin and reboot "
    "(`sudo raspi-config nonint do_boot_behaviour B4`); "
    "/etc/xdg/autostart/warmcard-screen.desktop 应存在 must exist: "
    "重新运行 re-run install-kiosk.sh; 手动打开 open by hand: `/usr/local/bin/warmcard-screen`"
)


def _status(port: int) -> dict[str, Any] | None:
    """The running kiosk's /status.json, or None when nothing answers there."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/status.json", timeout=2) as answer:
            data: dict[str, Any] = json.loads(answer.read())
            return data
    except (OSError, ValueError):
        return None


def check_screen(settings: GatewaySettings, deps: DoctorDeps) -> CheckResult:
    """The page answers on 127.0.0.1 and a browser is connected to it.

    With the kiosk stopped (as for the reader check) the doctor serves the page itself for a
    moment: the kiosk's Chromium reconnects to it within a second or two.
    """
    port = settings.screen_port
    if not port:
        return CheckResult(SCREEN, Status.SKIP, "screen_port = 0: 本机没有屏幕 no screen")
    own: ScreenFeedback | None = None
    if _status(port) is None:
        try:
            own = ScreenFeedback(port=port, site="温馨卡自检 Warmcard doctor").start()
        except ScreenError as exc:
            return CheckResult(
                SCREEN,
                Status.FAIL,
                f"127.0.0.1:{port} 没有页面，端口被占用 no page, port taken: {exc}",
                "停掉占用端口的程序或改 screen_port stop the other program or change screen_port",
            )
    try:
        deadline = time.monotonic() + deps.screen_wait_s
        while True:
            status = _status(port) if own is None else {"clients": own.clients}
            clients = int((status or {}).get("clients") or 0)
            if clients or time.monotonic() >= deadline:
                break
            time.sleep(0.2)
    finally:
        if own is not None:
            own.stop()
    where = f"http://127.0.0.1:{port}/" + (" (自检页面 doctor's page)" if own else "")
    if not clients:
        return CheckResult(
            SCREEN,
            Status.FAIL,
            f"{where} 有页面，但 {deps.screen_wait_s:.0f} 秒内没有浏览器连上 page answers, "
            "no browser connected",
            SCREEN_FIX,
        )
    return CheckResult(
        SCREEN, Status.PASS, f"{where} 有页面，{clients} 个浏览器已连接 browser connected"
    )


def _alsa_card(device: str) -> str | None:
    """The card a device names (plughw:CARD=Headphones,DEV=0 -> Headphones; hw:1 -> 1)."""
    named = re.search(r"CARD=([^,]+)", device)
    if named:
        return named.group(1)
    numbered = re.fullmatch(r"(?:plug)?hw:([0-9A-Za-z_]+)(?:,[0-9]+)*", device)
    return numbered.group(1) if numbered else None


def _cards(path: Path) -> dict[str, str]:
    """ALSA's cards: index and id -> description, from /proc/asound/cards."""
    try:
        text = path.read_text()
    except OSError:
        return {}
    found = {}
    for index, card_id, description in re.findall(r"^ *(\d+) \[(\S+) *\]: (.*)$", text, re.M):
        found[index] = found[card_id] = description.strip()
    return found


def check_speaker(settings: GatewaySettings, deps: DoctorDeps) -> CheckResult:
    """The clips are there, the ALSA device exists, and the player plays one to the end."""
    if settings.voice_dir is None:
        return CheckResult(
            SPEAKER, Status.SKIP, "没有 voice_dir，本机不说话 no voice_dir: a silent kiosk"
        )
    voice = VoiceFeedback(settings.voice_dir, settings.voice_player)
    missing = [name for name in CLIPS if voice.clip_path(name) is None]
    if missing:
        return CheckResult(
            SPEAKER,
            Status.FAIL,
            f"缺少语音 missing clips in {settings.voice_dir}: {', '.join(missing)}",
            f"`sudo -u warmcard warmcard voice render --out {settings.voice_dir}`",
        )
    player = settings.voice_player
    device = player[player.index("-D") + 1] if "-D" in player[:-1] else "default"
    card = _alsa_card(device)
    cards = _cards(deps.alsa_cards)
    if card is not None and card not in cards:
        listed = ", ".join(sorted(k for k in cards if not k.isdigit())) or "无 none"
        return CheckResult(
            SPEAKER,
            Status.FAIL,
            f"没有声卡 no ALSA card {card!r} (voice_player -D {device}); 现有 present: {listed}",
            "`aplay -l` 看声卡名 lists the cards; 重新运行 re-run install-kiosk.sh "
            "--audio-device plughw:CARD=<name>,DEV=0 --force-config; "
            "USB 喇叭插好 plug in the USB speaker",
        )
    clip = voice.clip_path("check_in")
    assert clip is not None
    deps.say(f"  ▶ 请听 listen: {clip.name} ({CLIPS['check_in']})")
    problem = play_clip(player, clip)
    if problem is not None:
        return CheckResult(
            SPEAKER,
            Status.FAIL,
            f"{device}: 播放失败 did not play: {problem}",
            "服务用户要在 audio 组 the service user must be in group audio "
            "(`sudo usermod -aG audio warmcard`); `aplay -l`; 音量 volume: `alsamixer`",
        )
    return CheckResult(
        SPEAKER,
        Status.PASS,
        f"{device}: 已播放 played {clip.name}; 请确认听到 check you heard it",
    )


KIOSK_CHECKS: tuple[ExtraCheck, ...] = ((SCREEN, check_screen), (SPEAKER, check_speaker))
