"""The kiosk's pin map (hardware/pinmap.toml): loaded, validated, and rendered as the docs' table.

`python -m firmware_gateway.pinmap --markdown [PATH]` prints the wiring table that
hardware/README.md carries between its `pinmap:begin` and `pinmap:end` markers.
"""

from __future__ import annotations

import sys
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from firmware_gateway.errors import GatewayError

REQUIRED_ROLES = ("green_led", "red_led", "buzzer")
OPTIONAL_ROLES = ("relay", "pn532_reset")
UART_ROLES = ("uart_txd", "uart_rxd")
ROLES = REQUIRED_ROLES + OPTIONAL_ROLES + UART_ROLES

ROLE_NAMES = {
    "green_led": "绿灯 Green LED",
    "red_led": "红灯 Red LED",
    "buzzer": "蜂鸣器 Buzzer",
    "relay": "继电器 Relay",
    "pn532_reset": "读卡器复位 PN532 reset",
    "uart_txd": "串口发送 UART TXD",
    "uart_rxd": "串口接收 UART RXD",
}

# BCM GPIO number -> physical pin on the 40-pin header (every Pi since the B+).
# GPIO0/1 (pins 27/28) are left out on purpose: they carry the HAT ID EEPROM bus.
HEADER_PIN = {
    2: 3, 3: 5, 4: 7, 5: 29, 6: 31, 7: 26, 8: 24, 9: 21, 10: 19, 11: 23, 12: 32, 13: 33,
    14: 8, 15: 10, 16: 36, 17: 11, 18: 12, 19: 35, 20: 38, 21: 40, 22: 15, 23: 16, 24: 18,
    25: 22, 26: 37, 27: 13,
}  # fmt: skip

_KEYS = {"bcm", "connects", "active_high"}


class PinmapError(GatewayError):
    """The pin map file is unreadable or wrong; the message names the role and the fix."""


@dataclass(frozen=True)
class Pin:
    role: str
    bcm: int
    connects: str = ""
    active_high: bool = True

    @property
    def header_pin(self) -> int:
        return HEADER_PIN[self.bcm]


@dataclass(frozen=True)
class Pinmap:
    pins: dict[str, Pin]
    source: str = field(default="", compare=False)

    def get(self, role: str) -> Pin | None:
        return self.pins.get(role)

    def __getitem__(self, role: str) -> Pin:
        return self.pins[role]

    def markdown_table(self) -> str:
        """The wiring table for hardware/README.md, one row per role in ROLES order."""
        rows = [
            "| 用途 Role | BCM | 排针 Header pin | 接到 Connects to |",
            "|---|---|---|---|",
        ]
        for role in ROLES:
            pin = self.pins.get(role)
            if pin is not None:
                rows.append(
                    f"| {ROLE_NAMES[role]} (`{role}`) | GPIO{pin.bcm} | {pin.header_pin} "
                    f"| {pin.connects} |"
                )
        return "\n".join(rows)


def default_pinmap_path() -> Path:
    """The pin map shipped in the package (a symlink to hardware/pinmap.toml in the repo)."""
    return Path(str(resources.files("firmware_gateway").joinpath("pinmap.toml")))


def parse_pinmap(data: Mapping[str, object], source: str = "pinmap") -> Pinmap:
    """Validate a decoded pin map: known roles, BCM 2..27, no pin twice, required roles present."""
    pins: dict[str, Pin] = {}
    used: dict[int, str] = {}
    for role, entry in data.items():
        if role not in ROLES:
            raise PinmapError(
                f"{source}: unknown role [{role}]; known roles are {', '.join(ROLES)} "
                f"· 未知用途 [{role}]"
            )
        if not isinstance(entry, dict):
            raise PinmapError(f"{source}: [{role}] must be a table with bcm = <number>")
        unknown = set(entry) - _KEYS
        if unknown:
            raise PinmapError(f"{source}: [{role}] has unknown keys {sorted(unknown)}")
        bcm = entry.get("bcm")
        if not isinstance(bcm, int) or isinstance(bcm, bool) or bcm not in HEADER_PIN:
            raise PinmapError(
                f"{source}: [{role}] bcm = {bcm!r} is not a usable BCM GPIO number (2..27) "
                f"· 引脚号无效，请用 BCM 编号 2..27"
            )
        if bcm in used:
            raise PinmapError(
                f"{source}: GPIO{bcm} is used twice, by [{used[bcm]}] and [{role}] "
                f"· GPIO{bcm} 被重复使用"
            )
        used[bcm] = role
        connects = entry.get("connects", "")
        active_high = entry.get("active_high", True)
        if not isinstance(connects, str) or not isinstance(active_high, bool):
            raise PinmapError(f"{source}: [{role}] connects must be text, active_high true/false")
        pins[role] = Pin(role=role, bcm=bcm, connects=connects, active_high=active_high)
    missing = [r for r in REQUIRED_ROLES if r not in pins]
    if missing:
        raise PinmapError(f"{source}: missing required roles {missing} · 缺少必需的引脚")
    return Pinmap(pins=pins, source=source)


def load_pinmap(path: Path | str | None = None) -> Pinmap:
    """Load and validate a pin map file; None means the one shipped with the package."""
    path = Path(path) if path is not None else default_pinmap_path()
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise PinmapError(f"cannot read pin map {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise PinmapError(f"pin map {path} is not valid TOML: {exc}") from None
    return parse_pinmap(data, str(path))


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] != "--markdown":
        print("usage: python -m firmware_gateway.pinmap --markdown [PINMAP.toml]", file=sys.stderr)
        return 2
    print(load_pinmap(args[1] if len(args) > 1 else None).markdown_table())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
