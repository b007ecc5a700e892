"""The kiosk's doctor checks and `warmcard voice play` fail for real faults, with the reason."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from firmware_gateway.doctor import DoctorDeps, Status
from firmware_gateway.settings import GatewaySettings
from kiosk.doctor_checks import check_screen, check_speaker
from kiosk.screen import ScreenFeedback
from kiosk.voice import render_clips
from tests.kiosk.test_screen import free_port
from warmcard.command.cli import app

CARDS = " 0 [Headphones     ]: bcm2835_headpho - bcm2835 Headphones\n"


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("voice")
    render_clips(out)
    return out


def settings(tmp_path: Path, **kw: object) -> GatewaySettings:
    return GatewaySettings(device_id="dali-doc-01", data_dir=tmp_path, **kw)  # type: ignore[arg-type]


def deps(tmp_path: Path, cards: str = CARDS) -> DoctorDeps:
    (tmp_path / "cards").write_text(cards)
    return DoctorDeps(say=lambda _: None, screen_wait_s=0.5, alsa_cards=tmp_path / "cards")


def test_screen_without_a_browser_fails_with_the_fix(tmp_path: Path) -> None:
    result = check_screen(settings(tmp_path, screen_port=free_port()), deps(tmp_path))
    assert result.status is Status.FAIL
    assert "no browser connected" in result.detail and "autostart" in result.fix


def test_screen_of_a_running_kiosk_is_asked_how_many_browsers(tmp_path: Path) -> None:
    screen = ScreenFeedback(port=0).start()
    try:
        result = check_screen(settings(tmp_path, screen_port=screen.port), deps(tmp_path))
        assert result.status is Status.FAIL and "(自检页面" not in result.detail  # its page
    finally:
        screen.stop()
    assert check_screen(settings(tmp_path, screen_port=0), deps(tmp_path)).status is Status.SKIP


def test_speaker_on_a_card_that_is_not_there(tmp_path: Path, clips: Path) -> None:
    player = ["aplay", "-q", "-D", "plughw:CARD=UACDemoV10,DEV=0"]
    result = check_speaker(settings(tmp_path, voice_dir=clips, voice_player=player), deps(tmp_path))
    assert result.status is Status.FAIL
    assert "UACDemoV10" in result.detail and "present: Headphones" in result.detail
    assert "--audio-device" in result.fix


def test_speaker_whose_player_fails_says_why(tmp_path: Path, clips: Path) -> None:
    # The card is listed, but ALSA here has no such device: aplay's own words come back.
    player = ["aplay", "-q", "-D", "plughw:CARD=Headphones,DEV=0"]
    result = check_speaker(settings(tmp_path, voice_dir=clips, voice_player=player), deps(tmp_path))
    assert result.status is Status.FAIL
    assert "aplay exit 1" in result.detail and "audio" in result.fix


def test_speaker_missing_clips_and_silent_kiosk(tmp_path: Path) -> None:
    (tmp_path / "voice").mkdir()
    result = check_speaker(settings(tmp_path, voice_dir=tmp_path / "voice"), deps(tmp_path))
    assert result.status is Status.FAIL and "warmcard voice render" in result.fix
    assert check_speaker(settings(tmp_path), deps(tmp_path)).status is Status.SKIP


def test_voice_play_fails_when_no_prompt_plays(clips: Path) -> None:
    """aplay says "No such device": the command says so and exits 1 (it used to exit 0)."""
    result = CliRunner().invoke(
        app, ["voice", "play", "--dir", str(clips), "--player", "aplay -q -D plughw:CARD=Nope"]
    )
    assert result.exit_code == 1
    assert "No such device" in result.output and "did not play" in result.output


def test_voice_play_passes_when_every_prompt_plays(clips: Path, tmp_path: Path) -> None:
    (tmp_path / ".asoundrc").write_text(
        f'pcm.rec {{ type file slave.pcm "null" file "{tmp_path / "out.raw"}" format "raw" }}\n'
    )
    result = CliRunner().invoke(
        app,
        ["voice", "play", "--dir", str(clips), "--player", "aplay -q -D rec"],
        env={"HOME": str(tmp_path)},
    )
    assert result.exit_code == 0, result.output
    assert (tmp_path / "out.raw").stat().st_size > 100_000  # every prompt went to the device
