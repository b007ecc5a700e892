"""The systemd units verify cleanly and start real `warmcard` commands; the installer's config
template produces a config the kiosk accepts, and placeholders are refused."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import typer

from firmware_gateway.settings import GatewaySettings
from tests.support.paths import REPO
from warmcard.command.cli import app

UNITS = sorted((REPO / "systemd").glob("*.service"))
INSTALLED_BINARY = "/opt/warmcard/bin/warmcard"
INSTALL = REPO / "systemd" / "install-kiosk.sh"


def exec_start(unit: Path) -> list[str]:
    lines = [ln for ln in unit.read_text().splitlines() if ln.startswith("ExecStart=")]
    assert len(lines) == 1, f"{unit.name}: exactly one ExecStart"
    return shlex.split(lines[0].removeprefix("ExecStart="))


def test_units_exist() -> None:
    assert [u.name for u in UNITS] == [
        "warmcard-console.service",
        "warmcard-ingest.service",
        "warmcard-kiosk.service",
    ]


@pytest.mark.parametrize("unit", UNITS, ids=lambda u: u.name)
def test_unit_passes_systemd_analyze_verify(unit: Path, tmp_path: Path) -> None:
    # verify insists that ExecStart's binary exists and is executable. The unit names the
    # installed /opt/warmcard path, which is absent here, so a copy names this venv's real
    # `warmcard` instead; everything else is verified as shipped.
    binary = Path(sys.executable).with_name("warmcard")
    assert binary.exists(), binary
    copy = tmp_path / unit.name
    copy.write_text(unit.read_text().replace(INSTALLED_BINARY, str(binary)))
    systemd_analyze = shutil.which("systemd-analyze")
    assert systemd_analyze, "systemd-analyze missing: scripts/setup.sh installs package systemd"
    done = subprocess.run(
        [systemd_analyze, "verify", str(copy)], capture_output=True, text=True, timeout=60
    )
    # verify exits 0 on unknown keys and only warns on stderr, so any output is a failure.
    assert done.returncode == 0, done.stderr
    assert done.stderr.strip() == "", done.stderr


@pytest.mark.parametrize("unit", UNITS, ids=lambda u: u.name)
def test_unit_hardening_and_notify(unit: Path) -> None:
    text = unit.read_text()
    for line in (
        "Type=notify",
        "Restart=always",
        "User=warmcard",
        "ProtectSystem=strict",
        "NoNewPrivileges=yes",
        "PrivateTmp=yes",
        "ProtectHome=yes",
        # Files the service makes are not readable by other local users (docs/security.md).
        "UMask=0027",
        "StateDirectoryMode=0750",
    ):
        assert re.search(rf"^{re.escape(line)}$", text, re.M), f"{unit.name}: {line}"
    assert re.search(r"^WatchdogSec=\d+$", text, re.M)
    assert re.search(r"^ReadWritePaths=/var/lib/warmcard(-ingest)?$", text, re.M)


def test_kiosk_unit_may_reach_the_reader_and_gpio() -> None:
    text = (REPO / "systemd" / "warmcard-kiosk.service").read_text()
    assert re.search(r"^SupplementaryGroups=dialout gpio input$", text, re.M)
    assert not re.search(r"^(PrivateDevices|ProtectClock)=yes", text, re.M)


@pytest.mark.parametrize("unit", UNITS, ids=lambda u: u.name)
def test_exec_start_names_a_registered_warmcard_command(unit: Path) -> None:
    argv = exec_start(unit)
    assert argv[0] == INSTALLED_BINARY
    command_name, args = argv[1], argv[2:]
    group = typer.main.get_command(app)
    commands = group.commands  # type: ignore[attr-defined]
    command = commands.get(command_name)
    assert command is not None, (
        f"{unit.name} starts `warmcard {command_name}`, which is not a registered command "
        f"(registered: {sorted(commands)})"
    )
    # The arguments must parse as that command's options.
    ctx = command.make_context(command_name, list(args), resilient_parsing=False)
    assert Path(ctx.params["config"]) == Path(args[args.index("--config") + 1])


def render(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(INSTALL), "--print-config", *args], capture_output=True, text=True, timeout=30
    )


def test_installer_renders_a_config_the_kiosk_accepts(tmp_path: Path) -> None:
    secret = tmp_path / "pw"
    secret.write_text("a-real-secret-1\n")
    done = render(
        "--device-id", "dali-xz-001", "--broker", "mqtt.dali.gov.cn:8883", "--tls",
        "--mqtt-password-file", str(secret),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    config = tmp_path / "kiosk.toml"
    config.write_text(done.stdout)
    settings = GatewaySettings.load(config)
    assert settings.device_id == "dali-xz-001"
    assert settings.reader == "pn532:/dev/serial0"
    assert settings.gpio is True
    assert (settings.mqtt.host, settings.mqtt.port, settings.mqtt.tls) == (
        "mqtt.dali.gov.cn",
        8883,
        True,
    )
    assert settings.mqtt.username == "dali-xz-001"
    assert settings.mqtt.password is not None
    assert settings.mqtt.password.get_secret_value() == "a-real-secret-1"


def test_installer_default_port_and_no_password() -> None:
    done = render(
        "--device-id", "dali-xz-002", "--broker", "10.0.0.5", "--reader", "sim:", "--no-gpio"
    )
    assert done.returncode == 0, done.stderr
    assert 'host = "10.0.0.5"' in done.stdout and "port = 1883" in done.stdout
    assert "warmcard provision" in done.stdout and "password =" not in done.stdout


@pytest.mark.parametrize(
    "args",
    [
        ("--device-id", "changeme", "--broker", "10.0.0.5"),
        ("--device-id", "your-device-id", "--broker", "10.0.0.5"),
        ("--device-id", "dali-xz-001", "--broker", "mqtt.example.com"),
        ("--device-id", "Dali XZ", "--broker", "10.0.0.5"),
        ("--device-id", "dali-xz-001"),
        ("--device-id", "dali-xz-001", "--broker", "10.0.0.5", "--reader", "nfc:usb"),
    ],
)
def test_installer_refuses_placeholders_and_bad_arguments(args: tuple[str, ...]) -> None:
    done = render(*args)
    assert done.returncode == 2, done.stdout
    assert "error" in done.stderr
    assert done.stdout == ""


def test_installer_refuses_placeholder_password(tmp_path: Path) -> None:
    secret = tmp_path / "pw"
    secret.write_text("changeme\n")
    done = render(
        "--device-id", "dali-xz-001", "--broker", "10.0.0.5", "--mqtt-password-file", str(secret)
    )
    assert done.returncode == 2 and "placeholder" in done.stderr


def test_udev_rules_are_well_formed_and_name_the_readers() -> None:
    rules = (REPO / "hardware" / "99-warmcard.rules").read_text()
    pair = re.compile(r'[A-Z]+(\{[A-Za-z_]+\})?(==|!=|\+=|=)"[^"]*"')
    ids = set()
    for line in rules.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        items = [item.strip() for item in line.split(", ")]
        assert all(pair.fullmatch(item) for item in items), line
        vendor = re.search(r'ATTRS\{idVendor\}=="([0-9a-f]{4})"', line)
        product = re.search(r'ATTRS\{idProduct\}=="([0-9a-f]{4})"', line)
        assert vendor and product, line
        if 'SYMLINK+="warmcard-reader"' in line:
            ids.add(f"{vendor.group(1)}:{product.group(1)}")
    # CH340, CP210x, FTDI FT232R, ACR122U
    assert {"1a86:7523", "10c4:ea60", "0403:6001", "072f:2200"} <= ids


@pytest.mark.parametrize(
    ("name", "command"),
    [("warmcard-ingest.service", "ingest"), ("warmcard-console.service", "console")],
)
def test_cloud_roles_run_apart_each_with_a_memory_bound(name: str, command: str) -> None:
    unit = REPO / "systemd" / name
    assert exec_start(unit)[1] == command
    assert re.search(r"^MemoryMax=\d+[MG]$", unit.read_text(), re.M)
