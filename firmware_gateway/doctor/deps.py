"""What the doctor touches in the world, passed in so tests run it without hardware."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from firmware_gateway.clock import kernel_synced
from firmware_gateway.pinmap import Pinmap
from firmware_gateway.pins import Pattern, PinPlayer, Step
from firmware_gateway.readers import Reader, open_reader


class DiskUsage(NamedTuple):
    total: int
    used: int
    free: int


def ntp_synchronized() -> bool | None:
    """True/False when the system can tell whether NTP has set the clock; None when it cannot."""
    try:
        done = subprocess.run(
            ["timedatectl", "show", "-p", "NTPSynchronized", "--value"],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
        if done.returncode == 0 and done.stdout.strip() in ("yes", "no"):
            return done.stdout.strip() == "yes"
    except (OSError, subprocess.TimeoutExpired):
        pass
    # No systemd as PID 1 (containers, some images): ask the kernel (adjtimex, read only).
    return kernel_synced()


# Without the kiosk's patterns, each output is switched on by itself.
PIN_TEST = (
    Pattern("绿灯 Green LED", "绿灯亮 1 秒 · green on for 1 s", (Step(1.0, green=True),)),
    Pattern("红灯 Red LED", "红灯亮 1 秒 · red on for 1 s", (Step(1.0, red=True),)),
    Pattern("蜂鸣器 Buzzer", "响 0.3 秒 · one beep of 0.3 s", (Step(0.3, buzzer=True),)),
)


def _default_player(pinmap: Pinmap) -> PinPlayer:
    return PinPlayer(pinmap)


@dataclass
class DoctorDeps:
    """What the doctor touches in the world; tests replace these."""

    open_reader: Callable[[str], Reader] = open_reader
    player: Callable[[Pinmap], PinPlayer] = _default_player
    # The patterns the LED and buzzer check plays; `warmcard doctor` passes the kiosk's own.
    patterns: Sequence[Pattern] = PIN_TEST
    wall_time_s: Callable[[], float] = time.time  # seconds since the epoch, as time.time
    ntp_synchronized: Callable[[], bool | None] = ntp_synchronized
    disk_usage: Callable[[Path], DiskUsage] = field(
        default=lambda path: DiskUsage(*shutil.disk_usage(path))
    )
    say: Callable[[str], None] = print
    broker_timeout_s: float = 10.0
    # How long the screen check waits for the kiosk's browser to (re)connect to the page.
    screen_wait_s: float = 10.0
    # The sound cards ALSA knows (its /proc file), for the speaker check.
    alsa_cards: Path = Path("/proc/asound/cards")
