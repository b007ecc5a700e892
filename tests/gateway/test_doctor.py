"""`warmcard doctor` against the simulated reader, MockFactory GPIO and real Mosquitto brokers."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from gpiozero.pins.mock import MockFactory

from firmware_gateway.doctor import (
    CheckResult,
    DiskUsage,
    DoctorDeps,
    Status,
    check_broker,
    check_clock,
    check_cloud,
    check_disk,
    check_feedback,
    check_reader,
    run_doctor,
)
from firmware_gateway.errors import ReaderError
from firmware_gateway.pinmap import Pinmap
from firmware_gateway.pins import PinPlayer
from firmware_gateway.readers.sim import SimReader
from firmware_gateway.settings import GatewaySettings
from kiosk.gpio_feedback import PATTERNS
from tests.support.ingest import Publisher, password_file
from warmcard.command.servers import Mosquitto, free_port
from warmcard.contract import DeviceConfig, Mode, Roster, RosterEntry, config_topic, roster_topic
from warmcard.settings import MqttSettings


def register_in_cloud(broker: Mosquitto, device: str = "dali-doctor-01", **config: Any) -> None:
    """What ingest does for a registered device: its retained config and its site's roster."""
    publisher = Publisher(broker.port)
    try:
        site = config.pop("site_id", "dali-xizhou-01")
        publisher.publish_raw(
            config_topic(device),
            DeviceConfig(device_id=device, site_id=site, mode=Mode.CANTEEN, **config).to_bytes(),
            retain=True,
        )
        entry = RosterEntry(card_uid="04A1B2C3", person_id="P0001", display_name="杨桂英")
        roster = Roster(site_id=site, version="1", entries=[entry])
        publisher.publish_raw(roster_topic(device), roster.to_bytes(), retain=True)
    finally:
        publisher.close()


def write_config(tmp_path: Path, *, reader: str = "sim:", port: int = 1, extra: str = "") -> Path:
    data = tmp_path / "data"
    data.mkdir(exist_ok=True)
    path = tmp_path / "kiosk.toml"
    path.write_text(
        # screen_port = 0: a kiosk without a display (the screen check is tests/kiosk's).
        f'device_id = "dali-doctor-01"\nreader = "{reader}"\ndata_dir = "{data}"\n'
        f"screen_port = 0\n{extra}\n"
        f'[mqtt]\nhost = "127.0.0.1"\nport = {port}\n'
    )
    return path


def settings_for(tmp_path: Path, **kw: Any) -> GatewaySettings:
    return GatewaySettings.load(write_config(tmp_path, **kw))


def quiet_deps(**kw: Any) -> tuple[DoctorDeps, list[str]]:
    said: list[str] = []
    deps = DoctorDeps(
        say=said.append,
        ntp_synchronized=lambda: True,
        broker_timeout_s=5.0,
        **kw,
    )
    return deps, said


def by_name(results: list[CheckResult], prefix: str) -> CheckResult:
    return next(r for r in results if r.name.startswith(prefix))


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "warmcard", "doctor", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=None if env is None else {**os.environ, **env},
    )


def test_sim_reader_passes_and_whole_doctor_exits_zero(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    register_in_cloud(mosquitto)
    config = write_config(tmp_path, port=mosquitto.port)
    done = run_cli("--config", str(config), "--no-tap")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "[通过 PASS] 云端登记 Registered in the cloud: 站点 site dali-xizhou-01" in done.stdout
    assert "[通过 PASS] 读卡器 Reader: sim:" in done.stdout
    assert "[跳过 SKIP] 刷卡 Live read: --no-tap" in done.stdout
    assert "[通过 PASS] 服务器 Broker" in done.stdout
    assert "[通过 PASS] 存储 Outbox disk" in done.stdout
    assert "失败 FAIL" not in done.stdout


def test_absent_reader_fails_with_a_fix_and_nonzero_exit(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    config = write_config(tmp_path, reader="pn532:/dev/does-not-exist", port=mosquitto.port)
    done = run_cli("--config", str(config), "--no-tap")
    assert done.returncode == 1, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    failed = next(i for i, line in enumerate(lines) if line.startswith("[失败 FAIL] 读卡器 Reader"))
    assert "/dev/does-not-exist" in lines[failed]
    assert lines[failed + 1].strip().startswith("修复 Fix:")
    assert "plug in" in lines[failed + 1]


def test_reader_spec_without_a_driver_fails_clearly(tmp_path: Path) -> None:
    settings = settings_for(tmp_path, reader="nfcpy:usb")
    deps, _ = quiet_deps()
    reader, live = check_reader(settings, deps, tap=True, tap_timeout_s=0.1)
    assert reader.status is Status.FAIL
    assert "sim:" in reader.fix and "pn532:" in reader.fix
    assert live.status is Status.SKIP


def test_reader_that_stops_answering_fails(tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    sim = SimReader()
    sim.fail()
    deps, _ = quiet_deps(open_reader=lambda spec: sim)
    reader, _ = check_reader(settings, deps, tap=True, tap_timeout_s=0.1)
    assert reader.status is Status.FAIL
    assert "fault" in reader.detail and "wiring" in reader.fix


def test_reader_that_raises_mid_read_fails_with_a_fix(tmp_path: Path) -> None:
    class Unplugged(SimReader):
        def poll(self, timeout: float) -> str | None:
            raise ReaderError("serial port vanished")

    deps, _ = quiet_deps(open_reader=lambda spec: Unplugged(spec))
    reader, live = check_reader(settings_for(tmp_path), deps, tap=True, tap_timeout_s=0.1)
    assert reader.status is Status.FAIL and "serial port vanished" in reader.detail
    assert reader.fix and live.status is Status.SKIP


def test_live_tap_reads_the_card_presented_after_the_prompt(tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    sim = SimReader()

    def say(line: str) -> None:
        said.append(line)
        if "Tap a card now" in line:
            sim.tap("04A1B2C3D4E5F6")  # the technician taps when asked

    said: list[str] = []
    deps = DoctorDeps(open_reader=lambda spec: sim, say=say)
    reader, live = check_reader(settings, deps, tap=True, tap_timeout_s=5)
    assert reader.status is Status.PASS
    assert live.status is Status.PASS
    assert "04A1B2C3D4E5F6" in live.detail
    assert any("请现在刷卡" in line for line in said)


def test_no_tap_within_timeout_fails_with_a_fix(tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    deps, _ = quiet_deps()
    _, live = check_reader(settings, deps, tap=True, tap_timeout_s=0.3)
    assert live.status is Status.FAIL
    assert "ISO 14443A" in live.fix and "--no-tap" in live.fix


def test_broker_unreachable_fails_with_a_fix(tmp_path: Path) -> None:
    settings = settings_for(tmp_path, port=free_port())  # nothing listens there
    deps, _ = quiet_deps()
    result = check_broker(settings, deps)
    assert result.status is Status.FAIL
    assert "refused" in result.detail
    assert "broker is running" in result.fix


def test_registration_names_the_site_or_says_how_to_register(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    register_in_cloud(mosquitto, "dali-doctor-02", site_id="dali-xizhou-02", site_name="喜洲小院")
    data = tmp_path / "data"
    data.mkdir()
    deps = quiet_deps()[0]
    for device, status in (("dali-doctor-02", Status.PASS), ("dali-doctor-nobody", Status.FAIL)):
        settings = GatewaySettings(
            device_id=device, data_dir=data, mqtt=MqttSettings(port=mosquitto.port)
        )
        broker, registered = check_cloud(settings, deps)
        assert broker.status is Status.PASS
        assert registered.status is status, registered
    assert (
        "喜洲小院 (dali-xizhou-02), canteen, 名单 roster 1 张卡 cards"
        in check_cloud(
            GatewaySettings(
                device_id="dali-doctor-02", data_dir=data, mqtt=MqttSettings(port=mosquitto.port)
            ),
            deps,
        )[1].detail
    )
    assert "devices.csv" in registered.fix and "not registered" in registered.detail


def test_broker_reachable_passes(tmp_path: Path, mosquitto: Mosquitto) -> None:
    result = check_broker(settings_for(tmp_path, port=mosquitto.port), quiet_deps()[0])
    assert result.status is Status.PASS, result
    assert "MQTT 5" in result.detail


@pytest.fixture(scope="module")
def locked_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mosquitto]:
    """A broker that knows one kiosk account and refuses everyone else."""
    run_dir = tmp_path_factory.mktemp("locked-broker")
    passwords = password_file(run_dir, "dali-doctor-01", "right-password")
    extra = f"allow_anonymous false\npassword_file {passwords}\n"
    with Mosquitto(run_dir, extra_conf=extra) as broker:
        yield broker


@pytest.mark.parametrize(
    ("credentials", "status"),
    [
        ('username = "dali-doctor-01"\npassword = "right-password"', Status.PASS),
        ('username = "dali-doctor-01"\npassword = "wrong-password"', Status.FAIL),
        ("", Status.FAIL),
    ],
)
def test_broker_credentials_are_checked(
    tmp_path: Path, locked_broker: Mosquitto, credentials: str, status: Status
) -> None:
    config = write_config(tmp_path, port=locked_broker.port)
    config.write_text(config.read_text() + credentials + "\n")
    result = check_broker(GatewaySettings.load(config), quiet_deps()[0])
    assert result.status is status, result
    if status is Status.FAIL:
        assert "refused" in result.detail
        assert "warmcard provision" in result.fix


def test_placeholder_password_fails_the_config_check(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    config.write_text(config.read_text() + 'username = "x"\npassword = "changeme"\n')
    deps, said = quiet_deps()
    results = run_doctor(config, deps, tap=False)
    config_result = by_name(results, "配置")
    assert config_result.status is Status.FAIL
    assert "placeholder" in config_result.detail
    assert "warmcard provision" in config_result.fix
    assert by_name(results, "服务器").status is Status.SKIP
    assert any("1 failed" in line for line in said)


def test_disk_check(tmp_path: Path) -> None:
    deps, _ = quiet_deps()
    ok = check_disk(settings_for(tmp_path), deps)
    assert ok.status is Status.PASS and "writable" in ok.detail

    full = DoctorDeps(disk_usage=lambda path: DiskUsage(10**9, 10**9 - 10 * 2**20, 10 * 2**20))
    low = check_disk(settings_for(tmp_path), full)
    assert low.status is Status.FAIL
    assert "10 MB free" in low.detail and "free space" in low.fix

    missing = settings_for(tmp_path).model_copy(update={"data_dir": tmp_path / "nope"})
    result = check_disk(missing, deps)
    assert result.status is Status.FAIL and "install -d" in result.fix


def test_unwritable_data_dir_fails(tmp_path: Path) -> None:
    # /proc refuses new files even to root (tests may run as root, where chmod would not bite).
    settings = settings_for(tmp_path).model_copy(update={"data_dir": Path("/proc")})
    result = check_disk(settings, quiet_deps()[0])
    assert result.status is Status.FAIL
    assert "not writable" in result.detail and "chown" in result.fix


def test_clock_checks() -> None:
    def clock(year: int) -> float:
        return datetime(year, 6, 1, tzinfo=UTC).timestamp()

    synced = DoctorDeps(wall_time_s=lambda: clock(2025), ntp_synchronized=lambda: True)
    assert check_clock(synced).status is Status.PASS
    unsynced = DoctorDeps(wall_time_s=lambda: clock(2025), ntp_synchronized=lambda: False)
    warn = check_clock(unsynced)
    assert warn.status is Status.WARN and "not NTP synchronised" in warn.detail
    epoch = DoctorDeps(wall_time_s=lambda: 0.0, ntp_synchronized=lambda: False)
    wrong = check_clock(epoch)
    assert wrong.status is Status.FAIL
    assert "1970-01-01" in wrong.detail and "set-ntp true" in wrong.fix


def test_feedback_check_plays_and_names_every_pattern(tmp_path: Path) -> None:
    factory = MockFactory()
    try:
        settings = settings_for(tmp_path, extra="gpio = true")
        deps, said = quiet_deps(
            player=lambda pinmap: PinPlayer(pinmap, pin_factory=factory),
            patterns=tuple(PATTERNS.values()),  # what `warmcard doctor` passes
        )
        result = check_feedback(settings, deps)
        assert result.status is Status.PASS, result
        for pattern in PATTERNS.values():
            assert any(pattern.name in line for line in said), pattern.name
        # Every pattern really reached the pins: the buzzer went on once per beat of each.
        beeps = sum(1 for s in factory.pin(22).states if s.state)
        expected = sum(
            1
            for p in PATTERNS.values()
            for prev, step in zip((None, *p.steps), p.steps, strict=False)
            if step.buzzer and not (prev and prev.buzzer)
        )
        assert beeps == expected
    finally:
        factory.close()


def test_warmcard_doctor_plays_the_kiosks_patterns(tmp_path: Path) -> None:
    config = write_config(tmp_path, extra="gpio = true")
    done = run_cli("--config", str(config), "--no-tap", env={"GPIOZERO_PIN_FACTORY": "mock"})
    assert "[通过 PASS] 灯和蜂鸣器 LEDs and buzzer" in done.stdout, done.stdout + done.stderr
    for pattern in PATTERNS.values():
        assert f"▶ {pattern.name}: {pattern.description}" in done.stdout, pattern.name


def test_feedback_check_without_gpio_is_skipped_not_failed(tmp_path: Path) -> None:
    result = check_feedback(settings_for(tmp_path), quiet_deps()[0])
    assert result.status is Status.SKIP and "gpio = true" in result.fix


def test_feedback_check_reports_gpio_that_cannot_open(tmp_path: Path) -> None:
    def no_gpio(pinmap: Pinmap) -> PinPlayer:
        raise PermissionError("/dev/gpiochip0")

    settings = settings_for(tmp_path, extra="gpio = true")
    result = check_feedback(settings, quiet_deps(player=no_gpio)[0])
    assert result.status is Status.FAIL and "gpio group" in result.fix


def test_doctor_passes_against_the_pn532_emulator(tmp_path: Path, mosquitto: Mosquitto) -> None:
    """The technician's bench check without hardware: the real driver over the emulator's pty."""
    from firmware_gateway.pn532.emulator import PN532Emulator

    uid = "04A1B2C3D4E5F6"
    register_in_cloud(mosquitto)
    with PN532Emulator() as emulator:
        config = write_config(tmp_path, reader=f"pn532:{emulator.path}", port=mosquitto.port)
        said: list[str] = []

        def say(text: str) -> None:
            said.append(text)
            if "Tap a card now" in text:
                emulator.present(uid)  # the technician taps when asked

        deps = DoctorDeps(say=say, ntp_synchronized=lambda: True, broker_timeout_s=5.0)
        results = run_doctor(config, deps, tap=True, tap_timeout_s=10)
    reader = by_name(results, "读卡器 Reader")
    assert reader.status is Status.PASS
    assert "firmware" in reader.detail and "1.6" in reader.detail  # GetFirmwareVersion 32 01 06
    assert by_name(results, "刷卡 Live read").status is Status.PASS
    assert any(uid in line for line in said)
    assert all(r.status is not Status.FAIL for r in results), [r.lines() for r in results]
