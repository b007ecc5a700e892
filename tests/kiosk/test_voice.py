"""Spoken prompts: clips rendered for real by espeak-ng, played by a player that never blocks a tap.

The player in these tests is a small script standing in for `aplay`: it records what it was asked
to play (no test can hear the sound card) and then plays for a while, like a real clip.
"""

from __future__ import annotations

import array
import os
import stat
import time
import wave
from pathlib import Path

import pytest
from typer.testing import CliRunner

from firmware_gateway.readers.sim import SimReader
from firmware_gateway.settings import GatewaySettings
from kiosk.errors import VoiceError
from kiosk.feedback import LogFeedback, MultiFeedback
from kiosk.policy import Outcome
from kiosk.runtime import Kiosk
from kiosk.voice import CLIPS, SITE_DIR, VoiceFeedback, clip_name, render_clips, wav_seconds
from warmcard.command.cli import app
from warmcard.contract import DeviceConfig, Kind, Mode, Roster, RosterEntry
from warmcard.settings import MqttSettings

YANG = RosterEntry(card_uid="04A1B2C3D4E5F6", person_id="p-0001", display_name="杨桂英")


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The real clips, rendered once for the module by espeak-ng."""
    out = tmp_path_factory.mktemp("voice")
    render_clips(out)
    return out


def fake_player(tmp_path: Path, play_s: float = 5.0) -> tuple[list[str], Path]:
    """A player command that logs "pid args" per call, then plays (sleeps) for play_s."""
    log = tmp_path / "played.log"
    script = tmp_path / "fake-aplay"
    script.write_text(f'#!/bin/sh\necho "$$ $*" >> "{log}"\nexec sleep {play_s}\n')
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return [str(script), "-q"], log


def wait_lines(log: Path, count: int, timeout: float = 5.0) -> list[str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        lines = log.read_text().splitlines() if log.exists() else []
        if len(lines) >= count:
            return lines
        time.sleep(0.01)
    raise AssertionError(f"player called {len(lines)} times, expected {count}")


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def write_tone(path: Path, seconds: float = 0.5) -> None:
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(16000)
        out.writeframes(array.array("h", [8000, -8000] * int(8000 * seconds)).tobytes())


def test_rendered_clips_are_real_speech(clips: Path) -> None:
    for name in CLIPS:
        path = clips / f"{name}.wav"
        with wave.open(str(path), "rb") as clip:
            assert clip.getnchannels() == 1
            assert clip.getsampwidth() == 2
            assert clip.getframerate() >= 16000
            frames = clip.readframes(clip.getnframes())
        seconds = wav_seconds(path)
        assert 0.8 < seconds < 10, f"{name}: {seconds:.2f} s"
        samples = array.array("h", frames)
        loud = sum(1 for s in samples if abs(s) > 1000)
        assert loud > len(samples) // 10, f"{name} is mostly silence"
    # Longer text, longer clip: the clips say different things.
    assert wav_seconds(clips / "unknown.wav") > wav_seconds(clips / "success.wav")
    assert not list(clips.glob(".*.wav")), "temporary files left behind"


def test_rendering_keeps_the_sites_own_recordings(tmp_path: Path) -> None:
    (tmp_path / SITE_DIR).mkdir()
    dialect = tmp_path / SITE_DIR / "check_in.wav"
    write_tone(dialect)
    before = dialect.read_bytes()
    render_clips(tmp_path)
    assert dialect.read_bytes() == before
    voice = VoiceFeedback(tmp_path)
    assert voice.clip_path("check_in") == dialect
    assert voice.clip_path("check_out") == tmp_path / "check_out.wav"
    assert voice.clip_path("no_such_clip") is None


def test_render_without_espeak_says_what_to_install(tmp_path: Path) -> None:
    with pytest.raises(VoiceError, match="apt-get install espeak-ng"):
        render_clips(tmp_path, espeak="espeak-ng-not-installed")


def test_a_broken_wav_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk")
    with pytest.raises(VoiceError, match="WAV"):
        wav_seconds(bad)


@pytest.mark.parametrize(
    ("outcome", "kind", "name"),
    [
        (Outcome.SUCCESS, Kind.CHECK_IN, "check_in"),
        (Outcome.SUCCESS, Kind.CHECK_OUT, "check_out"),
        (Outcome.SUCCESS, Kind.MEAL, "meal"),
        (Outcome.SUCCESS, None, "success"),
        (Outcome.REPEAT, None, "repeat"),
        (Outcome.UNKNOWN, Kind.UNKNOWN_CARD, "unknown"),
        (Outcome.MEAL_REPEAT, Kind.MEAL_REPEAT, "meal_repeat"),
        (Outcome.FAULT, None, "fault"),
    ],
)
def test_clip_for_each_answer(outcome: Outcome, kind: Kind | None, name: str) -> None:
    assert clip_name(outcome, kind) == name
    assert name in CLIPS


def test_show_never_waits_for_the_player(clips: Path, tmp_path: Path) -> None:
    player, log = fake_player(tmp_path, play_s=5.0)
    voice = VoiceFeedback(clips, player).start()
    try:
        started = time.perf_counter()
        voice.show_tap(Outcome.SUCCESS, "杨桂英 已签到 Checked in", Kind.CHECK_IN)
        assert time.perf_counter() - started < 0.05  # the clip plays 5 s; the tap loop goes on
        (first,) = wait_lines(log, 1)
        pid, *args = first.split()
        assert args == ["-q", str(clips / "check_in.wav")]
        assert alive(int(pid))
        # A new tap interrupts the old prompt instead of queueing behind it.
        voice.show(Outcome.UNKNOWN, "")
        second = wait_lines(log, 2)[1]
        assert second.split()[1:] == ["-q", str(clips / "unknown.wav")]
        deadline = time.monotonic() + 3
        while alive(int(pid)):
            assert time.monotonic() < deadline, "the interrupted player still runs"
            time.sleep(0.01)
        assert voice.played == ["check_in", "unknown"]
    finally:
        voice.stop()
    assert not alive(int(wait_lines(log, 2)[1].split()[0]))  # stop() ends the clip playing


def test_missing_clip_or_player_is_silent_not_fatal(tmp_path: Path) -> None:
    write_tone(tmp_path / "repeat.wav")
    voice = VoiceFeedback(tmp_path, ["/nonexistent/aplay"]).start()
    try:
        voice.show(Outcome.FAULT, "")  # no fault.wav
        voice.show(Outcome.REPEAT, "")  # a clip, but no player
        time.sleep(0.2)
        assert voice.played == []
        player, log = fake_player(tmp_path, play_s=0.1)
        voice.player = player
        voice.show(Outcome.REPEAT, "")  # the worker survived both
        assert wait_lines(log, 1)[0].endswith("repeat.wav")
    finally:
        voice.stop()


def test_start_without_clips_says_how_to_render(tmp_path: Path) -> None:
    with pytest.raises(VoiceError, match="warmcard voice render"):
        VoiceFeedback(tmp_path / "missing").start()


def test_gateway_passes_the_kind_check_in_then_goodbye(clips: Path, tmp_path: Path) -> None:
    """Through the real gateway and policy: the same card says 签到成功, then 再见."""
    player, log = fake_player(tmp_path, play_s=0.1)
    voice = VoiceFeedback(clips, player).start()
    logged = LogFeedback()
    settings = GatewaySettings(
        device_id="voice-k1",
        data_dir=tmp_path / "data",
        mqtt=MqttSettings(host="127.0.0.1", port=1),  # never started: no broker needed
        initial_config=DeviceConfig(
            device_id="voice-k1", site_id="s-xizhou", mode=Mode.ENTRANCE, debounce_s=0
        ),
    )
    gateway = Kiosk(settings, SimReader(), MultiFeedback(logged, voice))
    try:
        gateway.apply_roster(Roster(site_id="s-xizhou", version="1", entries=[YANG]))
        assert gateway.handle_tap(YANG.card_uid).kind is Kind.CHECK_IN
        wait_lines(log, 1)
        assert gateway.handle_tap(YANG.card_uid).kind is Kind.CHECK_OUT
        lines = wait_lines(log, 2)
        assert [line.rsplit("/", 1)[1] for line in lines] == ["check_in.wav", "check_out.wav"]
        # Channels without show_tap still get the plain two-argument show().
        assert [outcome for outcome, _ in logged.shown] == [Outcome.SUCCESS, Outcome.SUCCESS]
        assert "已签退" in logged.shown[1][1]
    finally:
        voice.stop()
        gateway.outbox.close()


def test_voice_render_command(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["voice", "render", "--out", str(tmp_path / "v")])
    assert result.exit_code == 0, result.output
    assert sorted(p.stem for p in (tmp_path / "v").glob("*.wav")) == sorted(CLIPS)
    assert "check_out.wav" in result.output
