"""`warmcard doctor`: checks a kiosk part by part and says, for each failure, how to fix it.

Checks: config, reader (open, firmware, live tap), LEDs and buzzer, clock, outbox disk, broker.
Every dependency that touches the world (reader factory, GPIO, clocks, NTP probe, disk) is
passed in through `DoctorDeps`, so tests run it without hardware.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import re
import shutil
import socket
import ssl
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, NamedTuple

import typer

from firmware_gateway.errors import UnknownReaderSpec
from firmware_gateway.feedback import PATTERNS, GpioFeedback
from firmware_gateway.pinmap import Pinmap, PinmapError, load_pinmap
from firmware_gateway.readers import SCHEMES, Reader, open_reader
from firmware_gateway.settings import GatewaySettings
from warmcard.contract import ReaderState
from warmcard.errors import WarmcardError
from warmcard.settings import SettingsError

DEFAULT_CONFIG = Path("/etc/warmcard/kiosk.toml")
# Before this the clock is certainly wrong (a Pi without RTC or network boots near 1970, or at
# the last fake-hwclock save): taps would be stamped with a wrong day.
EARLIEST_PLAUSIBLE = datetime(2024, 1, 1, tzinfo=UTC).timestamp()
_DEV_PATH = re.compile(r"/dev/[^\s:,]+")
_PROVISION = "运行 warmcard provision 取得本机的 MQTT 账号 · run `warmcard provision` to get this kiosk's MQTT credentials"  # noqa: E501


class Status(StrEnum):
    PASS = "通过 PASS"
    WARN = "注意 WARN"
    FAIL = "失败 FAIL"
    SKIP = "跳过 SKIP"


@dataclass(frozen=True)
class CheckResult:
    name: str
    status: Status
    detail: str
    fix: str = ""

    def lines(self) -> list[str]:
        out = [f"[{self.status.value}] {self.name}: {self.detail}"]
        if self.fix:
            out.append(f"    修复 Fix: {self.fix}")
        return out


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
    # No systemd as PID 1 (containers, some images): ask the kernel. adjtimex() with modes = 0
    # only reads; it returns TIME_ERROR (5) while the clock is unsynchronised.
    libc_name = ctypes.util.find_library("c")
    if not libc_name:
        return None
    try:
        libc = ctypes.CDLL(libc_name, use_errno=True)
        timex = ctypes.create_string_buffer(512)  # struct timex is ~208 bytes; modes = 0
        state = libc.adjtimex(timex)
    except (OSError, AttributeError):
        return None
    if state < 0:
        return None
    return state != 5


def _default_feedback(pinmap: Pinmap) -> GpioFeedback:
    return GpioFeedback(pinmap)


@dataclass
class DoctorDeps:
    """What the doctor touches in the world; tests replace these."""

    open_reader: Callable[[str], Reader] = open_reader
    feedback: Callable[[Pinmap], GpioFeedback] = _default_feedback
    wall_clock: Callable[[], float] = time.time
    ntp_synchronized: Callable[[], bool | None] = ntp_synchronized
    disk_usage: Callable[[Path], DiskUsage] = field(
        default=lambda path: DiskUsage(*shutil.disk_usage(path))
    )
    say: Callable[[str], None] = print
    broker_timeout_s: float = 10.0


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
            "placeholder secrets must be replaced (" + _PROVISION + ")",
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
            _PROVISION,
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
        feedback = deps.feedback(pinmap)
    except Exception as exc:  # gpiozero raises many kinds: no factory, busy pin, permission
        return CheckResult(
            name,
            Status.FAIL,
            f"打不开 GPIO cannot open GPIO: {type(exc).__name__}: {exc}",
            "让服务用户加入 gpio 组 add the user to the gpio group (`sudo usermod -aG gpio "
            "warmcard`); Pi 上需要 python3-lgpio (install-kiosk.sh 会装 installs it)",
        )
    try:
        for outcome, pattern in PATTERNS.items():
            deps.say(f"  ▶ {pattern.name}: {pattern.description}")
            feedback.show(outcome)
            if not feedback.wait_idle(pattern.seconds + 2):
                return CheckResult(
                    name, Status.FAIL, f"{pattern.name} 没有播完 did not finish", "重启 reboot"
                )
    finally:
        feedback.close()
    pins = ", ".join(f"{r} GPIO{pinmap[r].bcm}" for r in ("green_led", "red_led", "buzzer"))
    return CheckResult(
        name,
        Status.PASS,
        f"已播放 {len(PATTERNS)} 种提示 played {len(PATTERNS)} patterns on {pins}; "
        "请确认每种都看到灯、听到响 check each one lit and sounded",
        "",
    )


def check_clock(deps: DoctorDeps) -> CheckResult:
    name = "时钟 Clock"
    now = deps.wall_clock()
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


def check_broker(settings: GatewaySettings, deps: DoctorDeps) -> CheckResult:
    """Connect with MQTT 5 as the kiosk would, and report the CONNACK."""
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    name = "服务器 Broker"
    cfg = settings.mqtt
    where = f"{cfg.host}:{cfg.port}"
    answer: dict[str, Any] = {}

    def on_connect(client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        answer["reason"] = reason

    # Its own client id, so on an open broker the running kiosk is not kicked off. The production
    # broker (use_username_as_clientid) replaces it with the device's username: there the check
    # briefly takes over the kiosk's connection, which reconnects by itself and resends from its
    # outbox (clean start; nothing is lost).
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=f"{settings.device_id}-doctor",
        protocol=mqtt.MQTTv5,
    )
    client.on_connect = on_connect
    client.connect_timeout = deps.broker_timeout_s
    if cfg.username is not None:
        password = cfg.password.get_secret_value() if cfg.password is not None else None
        client.username_pw_set(cfg.username, password)
    try:
        if cfg.tls:
            client.tls_set(
                ca_certs=str(cfg.ca_file) if cfg.ca_file else None,
                certfile=str(cfg.cert_file) if cfg.cert_file else None,
                keyfile=str(cfg.key_file) if cfg.key_file else None,
            )
        client.connect(cfg.host, cfg.port, keepalive=cfg.keepalive_s)
        deadline = time.monotonic() + deps.broker_timeout_s
        while "reason" not in answer and time.monotonic() < deadline:
            client.loop(timeout=0.1)
    except socket.gaierror:
        return CheckResult(
            name,
            Status.FAIL,
            f"找不到服务器 cannot resolve {cfg.host}",
            "检查配置 [mqtt] host 和网络/DNS check [mqtt] host and the network/DNS",
        )
    except ssl.SSLError as exc:
        return CheckResult(
            name,
            Status.FAIL,
            f"{where}: TLS 失败 TLS failed: {exc}",
            "检查 [mqtt] ca_file 和时钟（证书要求时间正确）check [mqtt] ca_file and the clock",
        )
    except ConnectionRefusedError:
        return CheckResult(
            name,
            Status.FAIL,
            f"{where}: 连接被拒绝 connection refused",
            "确认服务器在运行、端口对 check the broker is running and the port "
            "(1883 明文 plain, 8883 TLS) in [mqtt]",
        )
    except OSError as exc:
        return CheckResult(
            name,
            Status.FAIL,
            f"{where}: 连不上 unreachable: {exc}",
            "检查网络和防火墙 check the network and firewall; 断网时刷卡照常记录 taps are kept "
            "while offline and sent later",
        )
    finally:
        client.disconnect()
        sock = client.socket()
        if sock is not None:
            sock.close()
    reason = answer.get("reason")
    if reason is None:
        return CheckResult(
            name,
            Status.FAIL,
            f"{where}: {deps.broker_timeout_s:.0f} 秒内没有应答 no CONNACK in "
            f"{deps.broker_timeout_s:.0f} s",
            "端口可能不是 MQTT the port may not be MQTT; "
            "检查 [mqtt] port 和 tls check port and tls",
        )
    if reason.is_failure:
        fix = (
            _PROVISION
            if reason.value in (0x86, 0x87, 0x8C)  # bad user/password, not authorised, bad auth
            else "检查服务器设置 check the broker's configuration"
        )
        return CheckResult(name, Status.FAIL, f"{where}: 服务器拒绝 refused: {reason}", fix)
    user = cfg.username or "匿名 anonymous"
    return CheckResult(name, Status.PASS, f"{where}: 已连接 connected (MQTT 5) as {user}")


def run_doctor(
    config: Path,
    deps: DoctorDeps | None = None,
    *,
    tap: bool = True,
    tap_timeout_s: float = 15.0,
) -> list[CheckResult]:
    """Run every check, printing each result as it comes; a failed config skips the rest."""
    deps = deps or DoctorDeps()
    results: list[CheckResult] = []

    def report(result: CheckResult) -> None:
        results.append(result)
        for line in result.lines():
            deps.say(line)

    config_result, settings = check_config(config)
    report(config_result)
    if settings is None:
        for name in ("读卡器 Reader", "灯和蜂鸣器 LEDs and buzzer", "存储 Outbox disk",
                     "服务器 Broker"):  # fmt: skip
            report(CheckResult(name, Status.SKIP, "配置无效 no valid config"))
        report(check_clock(deps))
    else:
        for result in check_reader(settings, deps, tap=tap, tap_timeout_s=tap_timeout_s):
            report(result)
        report(check_feedback(settings, deps))
        report(check_clock(deps))
        report(check_disk(settings, deps))
        report(check_broker(settings, deps))
    failed = [r.name for r in results if r.status is Status.FAIL]
    deps.say(
        f"有 {len(failed)} 项失败 {len(failed)} failed: {', '.join(failed)}"
        if failed
        else "全部通过 all checks passed"
    )
    return results


def register(app: typer.Typer) -> None:
    """Add `warmcard doctor`."""

    @app.command()
    def doctor(
        config: Annotated[
            Path, typer.Option("--config", "-c", help="Kiosk config file.")
        ] = DEFAULT_CONFIG,
        no_tap: Annotated[bool, typer.Option("--no-tap", help="Skip the live card read.")] = False,
        tap_timeout: Annotated[
            float, typer.Option(help="Seconds to wait for the live card read.")
        ] = 15.0,
    ) -> None:
        """检查本机 Check this kiosk: config, reader, LEDs, clock, disk, broker."""
        results = run_doctor(config, tap=not no_tap, tap_timeout_s=tap_timeout)
        raise typer.Exit(1 if any(r.status is Status.FAIL for r in results) else 0)
