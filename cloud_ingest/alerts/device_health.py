"""Device health from the kiosks' heartbeats: silent or offline, outbox growing, reader fault.

Evaluated every `evaluate_s` from live state's latest status per device. Each rule answers
"should an alert be open now"; the engine opens what is true and clears (cleared_by=auto)
what no longer is, so every device alert clears by itself when its cause goes away.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from itertools import pairwise

from cloud_ingest.alerts.models import Finding, Kind
from cloud_ingest.alerts.settings import AlertSettings
from cloud_ingest.pipeline.live import DeviceSeen
from warmcard.contract import DeviceStatus, ReaderState
from warmcard.rejections import InvalidPayload
from warmcard.timestamps import parse_ts

US = 1_000_000


def heartbeat_us(seen: DeviceSeen) -> int:
    """When the device last spoke.

    Normally the time we received the status. But a retained heartbeat is handed to us again
    on every (re)subscribe, so after an ingest restart a long-dead kiosk would look fresh: when
    the kiosk's clock is synced, its own timestamp is trusted if it is older.
    """
    status = seen.status
    if status is not None and status.ts and status.clock_synced:
        try:
            return min(seen.received_us, parse_ts(status.ts))
        except InvalidPayload:
            pass
    return seen.received_us


@dataclass
class _Outbox:
    samples: deque[tuple[int, int]] = field(default_factory=lambda: deque(maxlen=64))
    high_since_us: int | None = None  # first heartbeat of the current run at/above the limit
    growing: tuple[int, int] | None = None  # (from, to) depths of the rise that raised it


class UnstoredTaps:
    """Taps the broker acknowledged to a kiosk that no worker stored: an unconsumed share.

    A heartbeat with an empty outbox says every seq up to `last_seq` has its PUBACK. When the
    highest seq the console knows stored stays below that for `unstored_alarm_s`, some member
    of ingest's shared subscription holds taps it does not store: a stopped worker whose
    persistent session keeps getting its share, or a subscriber that is not a worker. A device
    first seen with nothing stored today is judged only from its next acknowledged seq on.
    """

    def __init__(self, settings: AlertSettings) -> None:
        self.settings = settings
        self._floor: dict[str, int] = {}  # acknowledged before we could know: not judged
        self._since: dict[str, int] = {}  # device -> when it was first seen lagging

    def check(
        self, device_id: str, now_us: int, status: DeviceStatus, stored: int | None
    ) -> tuple[str, str] | None:
        if status.outbox_depth != 0 or status.last_seq is None:
            return None  # acknowledged up to which seq is not known from this heartbeat
        acked = status.last_seq
        if stored is None:
            stored = self._floor.setdefault(device_id, acked)
        if acked <= stored:
            self._since.pop(device_id, None)
            return None
        since = self._since.setdefault(device_id, now_us)
        if now_us - since < self.settings.unstored_alarm_s * US:
            return None
        minutes = int((now_us - since) / US // 60)
        return (
            f"设备 {device_id} 已送达服务器的刷卡未入库：已确认至 {acked} 号，已存至 {stored} 号，"
            f"超过 {minutes} 分钟。请检查共享订阅中是否有停止的工作进程或陌生订阅者"
            "（docs/security.md），并运行 warmcard reconcile",
            f"kiosk {device_id}: taps acknowledged by the broker up to seq {acked}, stored only "
            f"up to {stored}, for {minutes} min. Check the share group for a stopped worker or a "
            "subscriber that is not a worker (docs/security.md), then run warmcard reconcile",
        )


class DeviceHealth:
    """Keeps each device's recent outbox depths; `evaluate` returns the alerts that hold now."""

    def __init__(self, settings: AlertSettings) -> None:
        self.settings = settings
        self._outbox: dict[str, _Outbox] = {}
        self._unstored = UnstoredTaps(settings)

    def evaluate(
        self,
        now_us: int,
        devices: Mapping[str, DeviceSeen],
        site_of: Mapping[str, str],
        stored: Mapping[str, int] | None = None,
    ) -> list[Finding]:
        """Findings for every device with a live problem; devices not listed are healthy."""
        s = self.settings
        found: list[Finding] = []
        for device_id, seen in devices.items():
            status = seen.status
            if status is None:
                continue  # the retained status was cleared: the device was retired
            site = site_of.get(device_id)

            def finding(
                kind: Kind, zh: str, en: str, _d: str = device_id, _s: str | None = site
            ) -> Finding:
                return Finding(kind, _d, now_us, zh, en, site_id=_s, device_id=_d)

            age_s = (now_us - heartbeat_us(seen)) / US
            if status.state == "offline":
                if age_s >= s.offline_alarm_s:
                    found.append(
                        finding(
                            Kind.DEVICE_OFFLINE,
                            f"设备 {device_id} 已断线 {int(age_s // 60)} 分钟（连接意外中断）",
                            f"kiosk {device_id} offline (last will) for {int(age_s // 60)} min",
                        )
                    )
                continue  # an offline kiosk's last reader/outbox figures are stale
            if age_s >= s.heartbeat_alarm_s:
                found.append(
                    finding(
                        Kind.DEVICE_OFFLINE,
                        f"设备 {device_id} 已 {int(age_s // 60)} 分钟无心跳",
                        f"no heartbeat from kiosk {device_id} for {int(age_s // 60)} min",
                    )
                )
                continue
            if status.reader in (ReaderState.FAULT, ReaderState.ABSENT):
                zh = "故障" if status.reader is ReaderState.FAULT else "未连接"
                found.append(
                    finding(
                        Kind.READER_FAULT,
                        f"设备 {device_id} 读卡器{zh}",
                        f"reader of kiosk {device_id} is {status.reader.value}",
                    )
                )
            if status.outbox_depth is not None:
                growing = self._outbox_problem(device_id, seen.received_us, status.outbox_depth)
                if growing is not None:
                    found.append(finding(Kind.OUTBOX_GROWING, *growing))
            if stored is not None:
                unstored = self._unstored.check(device_id, now_us, status, stored.get(device_id))
                if unstored is not None:
                    found.append(finding(Kind.EVENTS_UNSTORED, *unstored))
        return found

    def _outbox_problem(self, device_id: str, at_us: int, depth: int) -> tuple[str, str] | None:
        s = self.settings
        box = self._outbox.setdefault(device_id, _Outbox())
        if not box.samples or box.samples[-1][0] != at_us:  # one sample per heartbeat
            box.samples.append((at_us, depth))
            if depth >= s.outbox_alarm_depth:
                if box.high_since_us is None:
                    box.high_since_us = at_us
            else:
                box.high_since_us = None
        n = s.outbox_growth_heartbeats
        last = [d for _, d in list(box.samples)[-n:]]
        if len(last) == n and all(a < b for a, b in pairwise(last)):
            box.growing = (last[0], last[-1])
        elif box.growing is not None and len(last) >= 2 and (last[-1] < last[-2] or depth == 0):
            box.growing = None  # draining again; a flat depth keeps the alarm (no flapping)
        if box.growing is not None:
            first, top = box.growing
            return (
                f"设备 {device_id} 待发数据连续 {n} 次心跳增长（{first} → {top}），现为 {depth}",
                f"outbox of kiosk {device_id} grew over {n} heartbeats ({first} → {top}), "
                f"now {depth}",
            )
        if box.high_since_us is not None and at_us - box.high_since_us >= s.outbox_alarm_s * US:
            minutes = int((at_us - box.high_since_us) / US // 60)
            return (
                f"设备 {device_id} 待发数据 {depth} 条，已超过 {minutes} 分钟",
                f"outbox of kiosk {device_id} at {depth} for {minutes} min",
            )
        return None
