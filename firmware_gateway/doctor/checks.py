"""The doctor's checks of the kiosk's own parts: config, reader, LEDs and buzzer, clock, disk."""

from __future__ import annotations

import re
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from firmware_gateway.doctor.deps import DoctorDeps
from firmware_gateway.doctor.results import PROVISION_FIX, CheckResult, Status
from firmware_gateway.errors import UnknownReaderSpec
from firmware_gateway.pinmap import PinmapError, load_pinmap
from firmware_gateway.readers import SCHEMES
from firmware_gateway.settings import GatewaySettings
from warmcard.contract import ReaderState
from warmcard.errors import WarmcardError
from warmcard.settings import SettingsError

# Before this the clock is certainly wrong (a Pi without RTC or network boots near 1970, or at
# the last fake-hwclock save): taps would be stamped with a wrong day.
EARLIEST_PLAUSIBLE = datetime(2024, 1, 1, tzinfo=UTC).timestamp()
_DEV_PATH = re.compile(r"/dev/[^\s:,]+")


def check_config(path: Path) -> tuple[CheckResult, GatewaySettings | None]:
    name = "配置 Config"
    if not path.exists():
        return CheckResult(
            name,
            Status.FAIL,
            f"找不到配置文件 config file {path} not found",
            "运行 run `sudo systemd/install-kiosk.sh --device-id <id> --broker <host>` "
            "或指定 or pass --config <file>",
        ), None
    try:
        settings = GatewaySettings.load(path)
    except SettingsError as exc:
        return CheckResult(
            name,
            Status.FAIL,
            f"配置有误 config is invalid: {exc}",
            f"编辑 edit {path}, 改正上面提到的字段 fix the field named above; 占位密码需换成真的 "
            "placeholder secrets must be replaced (" + PROVISION_FIX + ")",
        ), None
    mqtt = settings.mqtt
    detail = (
        f"{path}: 设备 device {settings.device_id}, 读卡器 reader {settings.reader}, "
        f"服务器 broker {mqtt.host}:{mqtt.port}"
    )
    if mqtt.username is None or mqtt.password is None:
        return CheckResult(
            name,
            Status.WARN,
            detail + "; 没有 MQTT 账号 no MQTT username/password",
            PROVISION_FIX,
        ), settings
    return CheckResult(name, Status.PASS, detail), settings


def _missing_device_fix(device: str) -> str:
    if device in ("/dev/serial0", "/dev/ttyAMA0", "/dev/ttyS0"):
        return (
            "打开串口 enable the UART: `sudo raspi-config nonint do_serial_hw 0 && "
            "sudo raspi-config nonint do_serial_cons 1`, 然后重启 then reboot "
            "(hardware/README.md, UART)"
        )
    if device.startswith("/dev/input/"):
        return (
            "插好 USB 读卡器 plug in the USB reader; "
            "用 `ls /dev/input/by-id/` 找到路径 find its path"
        )
    return (
        "插好读卡器并检查接线 plug in / check the reader cable; "
        "USB 读卡器需要 udev 规则 USB readers need hardware/99-warmcard.rules in "
        "/etc/udev/rules.d (`ls -l /dev/warmcard-reader`); 或改正配置里的 or correct `reader =`"
    )


def check_reader(
    settings: GatewaySettings,
    deps: DoctorDeps,
    *,
    tap: bool,
    tap_timeout_s: float,
) -> list[CheckResult]:
    """Open the reader, report its firmware if the driver exposes it, then ask for a live tap."""
    name, live = "读卡器 Reader", "刷卡 Live read"
    spec = settings.reader
    for device in _DEV_PATH.findall(spec):
        if not Path(device).exists():
            return [
                CheckResult(
                    name,
                    Status.FAIL,
                    f"{spec}: 设备不存在 device {device} does not exist",
                    _missing_device_fix(device),
                ),
                CheckResult(live, Status.SKIP, "读卡器没打开 reader not open"),
            ]
    try:
        reader = deps.open_reader(spec)
    except UnknownReaderSpec as exc:
        return [
            CheckResult(
                name,
                Status.FAIL,
                str(exc),
                "配置里的 reader = 应以这些开头 `reader =` must start with "
                + ", ".join(f"{s}:" for s in SCHEMES)
                + " (hardware/README.md)",
            ),
            CheckResult(live, Status.SKIP, "读卡器没打开 reader not open"),
        ]
    except (WarmcardError, OSError) as exc:
        return [
            CheckResult(
                name,
                Status.FAIL,
                f"{spec}: 打不开 cannot open: {exc}",
                _missing_device_fix(next(iter(_DEV_PATH.findall(spec)), "")),
            ),
            CheckResult(live, Status.SKIP, "读卡器没打开 reader not open"),
        ]
    try:
        # Drivers open lazily and retry by themselves, so one short poll shows whether the
        # reader answers. A card already lying on it counts as the live read.
        early = reader.poll(0.3)
        if reader.state is not ReaderState.OK:
            return [
                CheckResult(
                    name,
                    Status.FAIL,
                    f"{spec}: 读卡器没有应答 reader not answering (state {reader.state.value})",
                    "检查电源、接线（TX/RX 交叉）和模式开关 check power, wiring (TX to RX crossed) "
                    "and the HSU mode switches (hardware/README.md); " + _missing_device_fix(spec),
                ),
                CheckResult(live, Status.SKIP, "读卡器没有应答 reader not answering"),
            ]
        firmware = getattr(reader, "firmware_version", None)
        if callable(firmware):
            firmware = firmware()
        detail = f"{spec} — 已连接 answering" + (f", 固件 firmware {firmware}" if firmware else "")
        results = [CheckResult(name, Status.PASS, detail)]
        if not tap:
            results.append(CheckResult(live, Status.SKIP, "--no-tap"))
            return results
        uid = early
        if uid is None:
            deps.say(
                f"请现在刷卡（{tap_timeout_s:.0f} 秒内）"
                f"Tap a card now (within {tap_timeout_s:.0f} s)…"
            )
            deadline = time.monotonic() + tap_timeout_s
            while uid is None and time.monotonic() < deadline:
                uid = reader.poll(min(0.5, max(0.0, deadline - time.monotonic())))
        if uid is None:
            results.append(
                CheckResult(
                    live,
                    Status.FAIL,
                    f"{tap_timeout_s:.0f} 秒内没读到卡 no card read in {tap_timeout_s:.0f} s",
                    "把卡平放在天线上停 1 秒 hold the card flat on the antenna for 1 s; "
                    "只支持 13.56 MHz ISO 14443A 卡 (MIFARE, NTAG) "
                    "only 13.56 MHz ISO 14443A cards; "
                    "跳过用 skip with --no-tap",
                )
            )
        else:
            results.append(CheckResult(live, Status.PASS, f"读到卡 card read: UID {uid}"))
        return results
    except (WarmcardError, OSError) as exc:
        # A driver may raise mid-read (unplugged during the check): that is a failure too.
        return [
            CheckResult(
                name,
                Status.FAIL,
                f"{spec}: 读卡时出错 failed while reading: {exc}",
                _missing_device_fix(next(iter(_DEV_PATH.findall(spec)), "")),
            ),
            CheckResult(live, Status.SKIP, "读卡器出错 reader failed"),
        ]
    finally:
        reader.close()


def check_feedback(settings: GatewaySettings, deps: DoctorDeps) -> CheckResult:
    """Play every pattern, naming each, for the technician to watch and listen."""
    name = "灯和蜂鸣器 LEDs and buzzer"
    if not settings.gpio:
        return CheckResult(
            name,
            Status.SKIP,
            "配置里 gpio = false，不驱动灯和蜂鸣器 LEDs and buzzer not driven",
            "装了灯和蜂鸣器就在配置里设 gpio = true · set gpio = true if they are fitted",
        )
    try:
        pinmap = load_pinmap(settings.pinmap)
    except PinmapError as exc:
        return CheckResult(
            name, Status.FAIL, str(exc), "改正引脚表 fix the pin map (hardware/README.md)"
        )
    try:
        player = deps.player(pinmap)
    except Exception as exc:  # gpiozero raises many kinds: no factory, busy pin, permission
        return CheckResult(
            name,
            Status.FAIL,
            f"打不开 GPIO cannot open GPIO: {type(exc).__name__}: {exc}",
            "让服务用户加入 gpio 组 add the user to the gpio group (`sudo usermod -aG gpio "
            "warmcard`); Pi 上需要 python3-lgpio (install-kiosk.sh 会装 installs it)",
        )
    try:
        for pattern in deps.patterns:
            deps.say(f"  ▶ {pattern.name}: {pattern.description}")
            player.play(pattern)
            if not player.wait_idle(pattern.seconds + 2):
                return CheckResult(
                    name, Status.FAIL, f"{pattern.name} 没有播完 did not finish", "重启 reboot"
                )
    finally:
        player.close()
    pins = ", ".join(f"{r} GPIO{pinmap[r].bcm}" for r in ("green_led", "red_led", "buzzer"))
    return CheckResult(
        name,
        Status.PASS,
        f"已播放 {len(deps.patterns)} 种提示 played {len(deps.patterns)} patterns on {pins}; "
        "请确认每种都看到灯、听到响 check each one lit and sounded",
        "",
    )


def check_clock(deps: DoctorDeps) -> CheckResult:
    name = "时钟 Clock"
    now = deps.wall_time_s()
    shown = datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    if now < EARLIEST_PLAUSIBLE:
        return CheckResult(
            name,
            Status.FAIL,
            f"时间不对 the clock says {shown}",
            "连上网络后运行 connect the network, then `sudo timedatectl set-ntp true`; "
            "长期断网的点装一个 RTC 时钟模块 (DS3231) fit an RTC where the network is often down",
        )
    synced = deps.ntp_synchronized()
    if synced:
        return CheckResult(name, Status.PASS, f"{shown}, 已与 NTP 同步 NTP synchronised")
    return CheckResult(
        name,
        Status.WARN,
        f"{shown}, "
        + (
            "未与 NTP 同步 not NTP synchronised"
            if synced is False
            else "无法判断 NTP 状态 NTP state unknown"
        ),
        "刷卡时间用这个时钟 taps are stamped with this clock: 检查网络 check the network and "
        "`timedatectl timesync-status`",
    )


def check_disk(settings: GatewaySettings, deps: DoctorDeps) -> CheckResult:
    name = "存储 Outbox disk"
    data_dir = settings.data_dir
    if not data_dir.is_dir():
        return CheckResult(
            name,
            Status.FAIL,
            f"数据目录不存在 data_dir {data_dir} does not exist",
            f"`sudo install -d -o warmcard -g warmcard -m 0750 {data_dir}`",
        )
    try:
        with tempfile.NamedTemporaryFile(dir=data_dir, prefix=".doctor-") as probe:
            probe.write(b"warmcard")
            probe.flush()
    except OSError as exc:
        return CheckResult(
            name,
            Status.FAIL,
            f"数据目录不能写 data_dir {data_dir} is not writable: {exc.strerror}",
            f"`sudo chown -R warmcard:warmcard {data_dir}`; "
            "用服务的用户运行本检查 run this check as the service user: "
            "`sudo -u warmcard warmcard doctor`",
        )
    free = deps.disk_usage(data_dir).free
    mb = 1024 * 1024
    need = settings.min_free_bytes // mb
    detail = f"{data_dir}: 剩余 {free // mb} MB free, 至少需要 minimum {need} MB"
    if free < settings.min_free_bytes:
        return CheckResult(
            name,
            Status.FAIL,
            detail + "; 空间不够，刷卡会被拒绝 too little: taps would be refused",
            "清理空间 free space: `sudo journalctl --vacuum-size=50M && sudo apt-get clean`, "
            "或换更大的 SD 卡 or use a larger SD card",
        )
    return CheckResult(name, Status.PASS, detail + ", 可写 writable")
