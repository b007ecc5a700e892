"""Spoken prompts for elders who cannot read the screen: one short WAV clip per answer.

Clips are rendered once, at setup, with espeak-ng's Mandarin voice (`warmcard voice render`) and
played with `aplay` in a child process. A site replaces any clip with its own recording (in the
local dialect, e.g. Bai) by putting a WAV of the same name in `<voice_dir>/site/`, which
re-rendering never touches.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import tempfile
import threading
import wave
from collections.abc import Callable, Sequence
from pathlib import Path

from kiosk.errors import VoiceError
from kiosk.policy import Outcome
from warmcard.contract import Kind

log = logging.getLogger("warmcard.kiosk.voice")

# Clip name -> what espeak-ng says. Short, plain words: heard in a noisy courtyard by old ears.
CLIPS: dict[str, str] = {
    "check_in": "签到成功",
    "check_out": "再见，慢走",
    "meal": "取餐成功，请慢用",
    "success": "好了",  # SUCCESS without a known kind
    "repeat": "已经记录了",
    "unknown": "这张卡没有登记，请找工作人员",
    "meal_repeat": "这一餐已经领过了",
    "fault": "暂停服务，请找工作人员",
}
SITE_DIR = "site"  # the site's own recordings, tried first
DEFAULT_PLAYER = ("aplay", "-q")
ESPEAK_VOICE = "cmn"
ESPEAK_SPEED = 140  # words per minute; espeak's 175 is too quick for many elders
ESPEAK_AMPLITUDE = 150  # 0-200; louder than the default 100 without clipping


def clip_name(outcome: Outcome, kind: Kind | None = None) -> str:
    """The clip that answers this outcome (and, for SUCCESS, this kind of event)."""
    if outcome is Outcome.SUCCESS:
        if kind is Kind.CHECK_IN:
            return "check_in"
        if kind is Kind.CHECK_OUT:
            return "check_out"
        if kind is Kind.MEAL:
            return "meal"
        return "success"
    return outcome.value


def render_clips(
    out_dir: Path,
    *,
    espeak: str = "espeak-ng",
    voice: str = ESPEAK_VOICE,
    speed: int = ESPEAK_SPEED,
    amplitude: int = ESPEAK_AMPLITUDE,
) -> list[Path]:
    """Render every clip in CLIPS into out_dir as NAME.wav (atomically); returns the paths."""
    program = shutil.which(espeak)
    if program is None:
        raise VoiceError(
            f"找不到 {espeak} Cannot find {espeak}: install it (apt-get install espeak-ng)"
        )
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / SITE_DIR).mkdir(exist_ok=True)
    written = []
    for name, text in CLIPS.items():
        target = out_dir / f"{name}.wav"
        fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".wav", dir=out_dir)
        os.close(fd)
        try:
            done = subprocess.run(
                [program, "-v", voice, "-s", str(speed), "-a", str(amplitude), "-w", tmp, text],
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
            if done.returncode != 0:
                raise VoiceError(
                    f"语音生成失败 Rendering {name!r} failed "
                    f"(espeak-ng exit {done.returncode}): {done.stderr.strip()}"
                )
            wav_seconds(Path(tmp))  # a truncated or empty file fails here, not on an elder's tap
            os.replace(tmp, target)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        written.append(target)
    return written


def wav_seconds(path: Path) -> float:
    """Duration of a WAV file; VoiceError if it is not a playable, non-empty WAV."""
    try:
        with wave.open(str(path), "rb") as clip:
            frames, rate = clip.getnframes(), clip.getframerate()
    except (OSError, EOFError, wave.Error) as exc:
        raise VoiceError(f"不是有效的 WAV 文件 Not a valid WAV file: {path}: {exc}") from None
    if frames == 0 or rate == 0:
        raise VoiceError(f"WAV 文件是空的 Empty WAV file: {path}")
    return frames / rate


def play_each(clip_dir: Path, player: Sequence[str], say: Callable[[str], None]) -> None:
    """Play every prompt once, in turn, naming each: to check the speaker and volume."""
    voice = VoiceFeedback(clip_dir, player)
    for name in CLIPS:
        path = voice.clip_path(name)
        say(f"{name}: {path or '(missing: silent)'}")
        if path is not None:
            subprocess.run([*voice.player, str(path)], check=False)


class VoiceFeedback:
    """Feedback that speaks: plays the clip for each answer in a child process.

    `show()` only hands the clip name to a worker thread and returns. The worker stops a clip
    still playing (a new tap interrupts the last prompt, prompts never queue up behind each
    other) and starts the player. Outcomes without a clip file are silent and logged once.
    """

    def __init__(self, clip_dir: Path, player: Sequence[str] = DEFAULT_PLAYER) -> None:
        self.clip_dir = Path(clip_dir)
        self.player = list(player)
        self.played: list[str] = []  # clip names handed to the player, newest last
        self._next: str | None = None
        self._wake = threading.Condition()
        self._stop = False
        self._thread: threading.Thread | None = None
        self._current: subprocess.Popen[bytes] | None = None
        self._missing: set[str] = set()

    def clip_path(self, name: str) -> Path | None:
        """The site's recording if there is one, else the rendered clip, else None."""
        for folder in (self.clip_dir / SITE_DIR, self.clip_dir):
            path = folder / f"{name}.wav"
            if path.is_file():
                return path
        return None

    def start(self) -> VoiceFeedback:
        if not self.clip_dir.is_dir():
            raise VoiceError(
                f"语音文件夹不存在 No voice clips in {self.clip_dir}: "
                f"run `warmcard voice render --out {self.clip_dir}`"
            )
        self._stop = False
        self._thread = threading.Thread(target=self._run, name="voice", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        with self._wake:
            self._stop = True
            self._wake.notify()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        self._end_current()

    def show(self, outcome: Outcome, message: str = "") -> None:
        self.show_tap(outcome, message, None)

    def show_tap(self, outcome: Outcome, message: str, kind: Kind | None) -> None:
        with self._wake:
            self._next = clip_name(outcome, kind)  # latest wins: an older prompt is stale
            self._wake.notify()

    def _run(self) -> None:
        while True:
            with self._wake:
                self._wake.wait_for(lambda: self._stop or self._next is not None)
                if self._stop:
                    return
                name, self._next = self._next, None
            assert name is not None
            try:
                self._play(name)
            except Exception:  # no sound is bad; a dead voice thread would stay silent forever
                log.exception("voice clip %s failed", name)

    def _play(self, name: str) -> None:
        path = self.clip_path(name)
        if path is None:
            if name not in self._missing:
                self._missing.add(name)
                log.warning(
                    "no voice clip %s.wav in %s; this answer is silent", name, self.clip_dir
                )
            return
        self._end_current()
        try:
            self._current = subprocess.Popen(
                [*self.player, str(path)],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,  # Ctrl-C on the kiosk must not hit the player first
            )
        except OSError as exc:
            log.error("cannot start voice player %s: %s", self.player[0], exc)
            return
        self.played.append(name)
        if len(self.played) > 1000:
            del self.played[:500]

    def _end_current(self) -> None:
        current, self._current = self._current, None
        if current is None:
            return
        if current.poll() is None:
            current.terminate()
        try:
            current.wait(2.0)
        except subprocess.TimeoutExpired:
            current.kill()
            current.wait()
