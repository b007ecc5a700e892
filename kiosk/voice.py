"""Spoken prompts for elders who cannot read the screen: one short WAV clip per answer.

Clips are rendered once, at setup, with espeak-ng's Mandarin voice (`warmcard voice render`) and
played with `aplay` in a child process. A site replaces any clip with its own recording (in the
local dialect, e.g. Bai) by putting a WAV of the same name in `<voice_dir>/site/`, which
re-rendering never touches.
"""

from __future__ import annotations

import array
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import wave
from collections.abc import Callable, Sequence
from pathlib import Path

from kiosk.errors import VoiceError
from kiosk.policy import Outcome
from warmcard.contract import Kind

log = logging.getLogger("warmcard.kiosk.voice")

# Clip name -> what espeak-ng says. Short, plain words: heard in a noisy courtyard by old ears,
# and over before the next tap of a lunch queue (a few seconds apart) cuts them off. espeak-ng's
# Mandarin takes about 0.45 s a syllable, and a comma adds a long pause: so four to six syllables,
# no commas. The screen carries the rest ("请找工作人员 please see staff" for an unknown card).
CLIPS: dict[str, str] = {
    "check_in": "签到成功",
    "check_out": "再见慢走",
    "meal": "取餐成功",
    "success": "好了",  # SUCCESS without a known kind
    "repeat": "已经记录了",
    "unknown": "这张卡没登记",
    "meal_repeat": "这餐领过了",
    "fault": "请找工作人员",
    "staff": "请选老人",  # a staff card opened the list of today's elders
}
# Every rendered clip is shorter than this (docs/kiosk-screen.md asks recordings for under 4 s;
# the margin keeps a prompt from running into the next tap at the lunch rush).
MAX_CLIP_S = 3.0
SITE_DIR = "site"  # the site's own recordings, tried first
DEFAULT_PLAYER = ("aplay", "-q")
ESPEAK_VOICE = "cmn"
ESPEAK_SPEED = 150  # words per minute; espeak's 175 is too quick for many elders
ESPEAK_AMPLITUDE = 150  # 0-200; louder than the default 100 without clipping
# espeak-ng ends every clip with about 0.44 s of silence; a tail this long is kept.
TAIL_S = 0.1
SILENCE = 300  # |sample| at or below this is silence (16-bit PCM)
CLIP_MODE = 0o640  # the service's group (the player) reads them; nobody else needs to


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
            trim_tail(Path(tmp))
            seconds = wav_seconds(Path(tmp))  # a truncated or empty file fails here
            if seconds >= MAX_CLIP_S:
                raise VoiceError(
                    f"语音太长 Clip {name!r} lasts {seconds:.2f} s, over {MAX_CLIP_S:.1f} s: "
                    "the next tap would cut it off; use fewer words or a higher --speed"
                )
            os.chmod(tmp, CLIP_MODE)  # mkstemp made it 0600: the player's group could not read
            os.replace(tmp, target)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        written.append(target)
    return written


def trim_tail(path: Path, tail_s: float = TAIL_S) -> None:
    """Cut the silence at the end of a 16-bit WAV down to tail_s (rewrites the file)."""
    try:
        with wave.open(str(path), "rb") as clip:
            params = clip.getparams()
            frames = clip.readframes(params.nframes)
    except (OSError, EOFError, wave.Error) as exc:
        raise VoiceError(f"不是有效的 WAV 文件 Not a valid WAV file: {path}: {exc}") from None
    if params.sampwidth != 2 or not frames:
        return
    samples = array.array("h", frames)
    if sys.byteorder == "big":  # WAV is little-endian
        samples.byteswap()
    last = len(samples) - 1
    while last >= 0 and abs(samples[last]) <= SILENCE:
        last -= 1
    keep = last // params.nchannels + 1 + int(tail_s * params.framerate)
    if keep >= params.nframes:
        return
    with wave.open(str(path), "wb") as out:
        out.setparams(params)
        out.writeframes(frames[: keep * params.nchannels * 2])


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


def play_clip(player: Sequence[str], path: Path, timeout_s: float = 15.0) -> str | None:
    """Play one clip to the end; None when it played, else why not (the player's own words)."""
    try:
        done = subprocess.run(
            [*player, str(path)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            timeout=timeout_s,
            check=False,
        )
    except FileNotFoundError:
        return f"找不到播放程序 player {player[0]!r} not found (apt-get install alsa-utils)"
    except subprocess.TimeoutExpired:
        return f"{timeout_s:.0f} 秒还没播完 still playing after {timeout_s:.0f} s"
    except OSError as exc:
        return f"播放程序启动失败 player {player[0]!r} failed to start: {exc.strerror}"
    if done.returncode != 0:
        said = " ".join(done.stderr.split())[-300:] or "no message"
        return f"{player[0]} exit {done.returncode}: {said}"
    return None


def play_each(clip_dir: Path, player: Sequence[str], say: Callable[[str], None]) -> list[str]:
    """Play every prompt once, in turn, naming each; returns what failed (empty: all played)."""
    voice = VoiceFeedback(clip_dir, player)
    failed = []
    for name in CLIPS:
        path = voice.clip_path(name)
        if path is None:
            say(f"{name}: 缺少 missing ({clip_dir}/{name}.wav)")
            failed.append(f"{name}: 缺少 missing")
            continue
        problem = play_clip(voice.player, path)
        say(f"{name}: {path}" + (f"  失败 FAILED: {problem}" if problem else ""))
        if problem:
            failed.append(f"{name}: {problem}")
    return failed


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
