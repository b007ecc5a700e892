"""What a notification says: Chinese first, English under it, the way the alerts page names things.

    【温馨卡告警】设备离线 Kiosk offline
    地点：喜洲小院 Xizhou courtyard
    对象：长者1
    时间：2026-11-30 15:41（北京时间 Asia/Shanghai）
    详情：…（names in place of ids, as on the alerts page）
    Detail: …
    查看 View: https://console.example/alerts?kind=reader_fault&site=…

The text is made when it is sent (the queue keeps no one's name), from the alert and the
registry's names at that moment.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlencode

from cloud_ingest import i18n
from cloud_ingest.alerts.models import KIND_NAMES, Alert
from cloud_ingest.alerts.naming import named, person_name, place_names
from cloud_ingest.registry.store import Registry
from warmcard.localtime import DEFAULT_TZ

APP = "温馨卡"
ZONE_NAMES = {"Asia/Shanghai": "北京时间"}


@dataclass(frozen=True)
class Names:
    """The registry's names and zones, read once for a round of messages."""

    sites: dict[str, tuple[str, str, str]]  # site_id -> (name_zh, name_en, tz)
    people: dict[str, tuple[str, str]]  # person_id -> (display_name, home site)
    zh: dict[str, str]  # site and kiosk ids -> their names (naming.place_names), zh-CN
    en: dict[str, str]  # the same in English

    @classmethod
    def read(cls, registry: Registry, alerts: list[Alert]) -> Names:
        sites = {s.site_id: (s.name_zh, s.name_en, s.tz) for s in registry.sites()}
        people = registry.people_homes(sorted({a.person_id for a in alerts if a.person_id}))
        devices = registry.devices()
        zh = place_names({s: n[0] or s for s, n in sites.items()}, devices, english=False)
        en = place_names({s: n[1] or n[0] or s for s, n in sites.items()}, devices, english=True)
        return cls(sites, people, zh, en)


def _zone(tz: str) -> str:
    local = ZONE_NAMES.get(tz)
    return f"{local} {tz}" if local else tz


def compose(alert: Alert, names: Names, console_url: str) -> tuple[str, str]:
    """(subject, text) of the message about `alert`."""
    zh, en = KIND_NAMES[alert.kind]
    site_zh, site_en, tz = names.sites.get(alert.site_id or "", ("", "", DEFAULT_TZ))
    lines = [f"【{APP}告警】{zh} {en}"]
    if alert.site_id:
        shown = site_zh or alert.site_id
        lines.append(
            f"地点 Site：{shown}" + (f" {site_en}" if site_en and site_en != shown else "")
        )
    if alert.person_id:
        lines.append(f"对象 Person：{person_name(names.people, alert.person_id)}")
    elif alert.device_id:
        kiosk = names.zh.get(alert.device_id)
        lines.append(
            f"设备 Kiosk：{kiosk}（{alert.device_id}）"
            if kiosk
            else f"设备 Kiosk：{alert.device_id}"
        )
    lines.append(f"时间 Time：{i18n.format_ts(alert.opened_at, tz, seconds=True)}（{_zone(tz)}）")
    lines.append(f"详情：{named(alert.detail_zh, alert, names.people, names.zh)}")
    lines.append(f"Detail: {named(alert.detail_en, alert, names.people, names.en)}")
    query = {"kind": alert.kind.value, **({"site": alert.site_id} if alert.site_id else {})}
    lines.append(f"查看 View：{console_url.rstrip('/')}/alerts?{urlencode(query)}")
    subject = f"【{APP}告警】{zh}" + (f" · {site_zh or alert.site_id}" if alert.site_id else "")
    return subject, "\n".join(lines)


def compose_test(
    area: tuple[str, str], username: str, when_us: int, console_url: str
) -> tuple[str, str]:
    """(subject, text) of the console's 'send test' message; `area` is its (zh, en) name."""
    zh, en = area
    lines = [
        f"【{APP}】测试消息 Test message",
        f"这是 {username} 在控制台发送的测试，{zh}的告警将这样送达。",
        f"A test sent by {username} from the console: alerts of {en} arrive here.",
        f"时间 Time：{i18n.format_ts(when_us, DEFAULT_TZ, seconds=True)}（{_zone(DEFAULT_TZ)}）",
        f"查看 View：{console_url.rstrip('/')}/alerts/notify",
    ]
    return f"【{APP}】测试消息 Test message", "\n".join(lines)
