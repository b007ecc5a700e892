"""What each doctor check found, and what to do about it."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

# The fix for missing or refused MQTT credentials, named by more than one check.
PROVISION_FIX = "运行 warmcard provision 取得本机的 MQTT 账号 · run `warmcard provision` to get this kiosk's MQTT credentials"  # noqa: E501


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
