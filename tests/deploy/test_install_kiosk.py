"""systemd/install-kiosk.sh in a throwaway root: every file it writes, the unit it enables, the
units verified by systemd-analyze, and a second run that changes nothing."""

from __future__ import annotations

import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from firmware_gateway.settings import GatewaySettings
from kiosk.voice import CLIPS, MAX_CLIP_S, wav_seconds
from tests.support.fakeroot import ids, install, make_root, members, tree
from tests.support.paths import REPO

ARGS = ("--device-id", "dali-xz-001", "--broker", "10.0.0.5", "--audio-device",
        "plughw:CARD=Headphones,DEV=0")  # fmt: skip


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = make_root(tmp_path_factory.mktemp("pi") / "root")
    done = install(root, *ARGS)
    assert done.returncode == 0, done.stdout + done.stderr
    return root


def mode_owner(root: Path, path: str) -> tuple[int, str, str]:
    info = (root / path.lstrip("/")).stat()
    users = {v: k for k, v in ids(root, "passwd").items()}
    groups = {v: k for k, v in ids(root, "group").items()}
    return stat.S_IMODE(info.st_mode), users[info.st_uid], groups[info.st_gid]


def test_every_file_written(root: Path) -> None:
    written = {p for p, (mode, *_) in tree(root).items() if not mode.startswith("0o40")}
    clips = {f"var/lib/warmcard/voice/{name}.wav" for name in CLIPS}
    assert written - {"etc/passwd-", "etc/group-", "etc/shadow-", "etc/gshadow-"} == {
        "etc/passwd", "etc/group", "etc/shadow", "etc/gshadow", "etc/os-release",
        "etc/warmcard/kiosk.toml",
        "etc/warmcard/cache.key",
        "etc/systemd/system/warmcard-kiosk.service",
        "etc/systemd/journald@warmcard.conf",
        "etc/systemd/system/multi-user.target.wants/warmcard-kiosk.service",
        "etc/udev/rules.d/99-warmcard.rules",
        "etc/xdg/autostart/warmcard-screen.desktop",
        "usr/local/bin/warmcard-screen",
        "opt/warmcard/bin/warmcard",
        *clips,
    }  # fmt: skip
    assert mode_owner(root, "etc/warmcard/kiosk.toml") == (0o640, "root", "warmcard")
    # The roster cache's key: root-only, handed to the service by systemd (LoadCredential).
    assert mode_owner(root, "etc/warmcard/cache.key") == (0o600, "root", "root")
    assert len((root / "etc/warmcard/cache.key").read_bytes()) == 32
    assert mode_owner(root, "usr/local/bin/warmcard-screen") == (0o755, "root", "root")
    assert mode_owner(root, "etc/systemd/journald@warmcard.conf") == (0o644, "root", "root")
    assert mode_owner(root, "var/lib/warmcard") == (0o750, "warmcard", "warmcard")
    for clip in clips:  # readable by the service's group, and short
        assert mode_owner(root, clip) == (0o640, "warmcard", "warmcard")
        assert wav_seconds(root / clip) < MAX_CLIP_S
    for group in ("dialout", "gpio", "input", "audio"):
        assert "warmcard" in members(root, group), group
    assert (root / "etc/udev/rules.d/99-warmcard.rules").read_bytes() == (
        REPO / "hardware/99-warmcard.rules"
    ).read_bytes()
    assert (root / "etc/systemd/system/warmcard-kiosk.service").read_bytes() == (
        REPO / "systemd/warmcard-kiosk.service"
    ).read_bytes()


def test_config_names_the_screen_voice_and_speaker(root: Path) -> None:
    settings = GatewaySettings.load(root / "etc/warmcard/kiosk.toml")
    assert settings.device_id == "dali-xz-001" and settings.screen_port == 8765
    assert settings.voice_dir == Path("/var/lib/warmcard/voice")
    assert settings.voice_player == ["aplay", "-q", "-D", "plughw:CARD=Headphones,DEV=0"]
    assert settings.site_name == ""  # the registry's name arrives with the device's config


def test_screen_starts_at_login_in_every_session(root: Path) -> None:
    entry = (root / "etc/xdg/autostart/warmcard-screen.desktop").read_text()
    assert "Exec=/usr/local/bin/warmcard-screen\n" in entry and "Type=Application" in entry
    script = root / "usr/local/bin/warmcard-screen"
    assert subprocess.run(["sh", "-n", str(script)], check=False).returncode == 0
    text = script.read_text()
    assert "--kiosk" in text and "http://127.0.0.1:8765/" in text
    assert "xset -dpms" in text  # X11, the fallback session, blanks by itself


def test_unit_is_enabled_and_verifies(root: Path) -> None:
    link = root / "etc/systemd/system/multi-user.target.wants/warmcard-kiosk.service"
    assert link.is_symlink()
    assert str(link.readlink()) == "/etc/systemd/system/warmcard-kiosk.service"
    enabled = subprocess.run(
        ["systemctl", f"--root={root}", "is-enabled", "warmcard-kiosk.service"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert enabled.stdout.strip() == "enabled"
    analyze = shutil.which("systemd-analyze")
    assert analyze, "systemd-analyze missing: scripts/setup.sh installs package systemd"
    done = subprocess.run(
        [analyze, "verify", f"--root={root}", "warmcard-kiosk.service"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0 and done.stderr.strip() == "", done.stderr


def test_second_run_changes_nothing(root: Path) -> None:
    before = tree(root)
    done = install(root, *ARGS)
    assert done.returncode == 0, done.stderr
    assert "nothing to change" in done.stdout and "wrote" not in done.stdout, done.stdout
    assert tree(root) == before


def test_a_kiosk_without_screen_or_voice(tmp_path: Path) -> None:
    root = make_root(tmp_path / "root")
    done = install(root, "--device-id", "dali-xz-002", "--broker", "10.0.0.5",
                   "--no-screen", "--no-voice", "--reader", "libnfc:acr122_usb")  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert not (root / "usr/local/bin/warmcard-screen").exists()
    assert not (root / "var/lib/warmcard/voice").exists()
    assert (
        "blacklist pn533_usb" in (root / "etc/modprobe.d/warmcard-blacklist-nfc.conf").read_text()
    )
    settings = GatewaySettings.load(root / "etc/warmcard/kiosk.toml")
    assert settings.screen_port == 0 and settings.voice_dir is None


def test_bad_arguments_touch_nothing(tmp_path: Path) -> None:
    root = make_root(tmp_path / "root")
    before = tree(root)
    done = install(root, "--device-id", "dali-xz-003", "--broker", "10.0.0.5",
                   "--audio-device", "hw:0; rm -rf /")  # fmt: skip
    assert done.returncode == 2 and "audio device" in done.stderr
    assert tree(root) == before
