"""A throwaway root with the paths of a Raspberry Pi OS install; the kiosk installer run in it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from tests.support.paths import REPO

INSTALL = REPO / "systemd" / "install-kiosk.sh"


def make_root(root: Path) -> Path:
    """Just what a fresh image has that the installer reads: accounts, os-release, systemd's
    own units (for `systemd-analyze verify --root`)."""
    etc = root / "etc"
    etc.mkdir(parents=True)
    (etc / "passwd").write_text(
        "root:x:0:0:root:/root:/bin/bash\npi:x:1000:1000::/home/pi:/bin/bash\n"
    )
    (etc / "group").write_text("root:x:0:\npi:x:1000:\n")
    for name, line in (("shadow", "root:*:19000:0:99999:7:::\npi:*:19000:0:99999:7:::\n"),
                       ("gshadow", "root:*::\npi:!::\n")):  # fmt: skip
        (etc / name).write_text(line)
        (etc / name).chmod(0o640)
    (etc / "os-release").write_text(
        'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nVERSION_CODENAME=bookworm\n'
    )
    units = root / "usr" / "lib" / "systemd" / "system"
    units.parent.mkdir(parents=True)
    shutil.copytree("/usr/lib/systemd/system", units, symlinks=True)
    return root


def install(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run systemd/install-kiosk.sh --root ROOT with this checkout's `warmcard` command."""
    warmcard = Path(sys.executable).with_name("warmcard")
    return subprocess.run(
        [
            "bash",
            str(INSTALL),
            "--root",
            str(root),
            "--no-venv",
            "--warmcard",
            str(warmcard),
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
        env={**os.environ},
    )


def tree(root: Path) -> dict[str, tuple[str, int, int, bytes]]:
    """Every path under root (systemd's copied units left out): mode, owner, content."""
    skip = root / "usr" / "lib" / "systemd"
    out = {}
    for path in sorted(root.rglob("*")):
        if path == skip or skip in path.parents:
            continue
        info = path.lstat()
        content = (
            os.readlink(path).encode()
            if path.is_symlink()
            else path.read_bytes()
            if path.is_file()
            else b""
        )
        out[str(path.relative_to(root))] = (oct(info.st_mode), info.st_uid, info.st_gid, content)
    return out


def ids(root: Path, kind: str) -> dict[str, int]:
    """name -> id from the root's own passwd or group."""
    lines = (root / "etc" / kind).read_text().splitlines()
    return {line.split(":")[0]: int(line.split(":")[2]) for line in lines if line}


def members(root: Path, group: str) -> list[str]:
    for line in (root / "etc" / "group").read_text().splitlines():
        name, _, _, users = line.split(":")
        if name == group:
            return [u for u in users.split(",") if u]
    raise AssertionError(f"no group {group}")
