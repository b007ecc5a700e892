"""An alert's wording with names for ids: a site's id inside its kiosk's id stays the kiosk's."""

from __future__ import annotations

from cloud_ingest.alerts.naming import named, place_names
from cloud_ingest.registry.store import Device
from warmcard.contract import Mode

SITES_ZH = {"xizhou-zhoucheng": "周城村幸福小院", "xizhou": "喜洲镇"}
SITES_EN = {"xizhou-zhoucheng": "Zhoucheng Village Courtyard", "xizhou": "Xizhou"}
DEVICES = [
    Device("xizhou-zhoucheng-canteen", "xizhou-zhoucheng", Mode.CANTEEN, 0.0),
    Device("xizhou-zhoucheng-gate", "xizhou-zhoucheng", Mode.ENTRANCE, 0.0),
]


def test_a_kiosk_is_named_by_its_site_and_mode_and_ids_are_replaced_whole() -> None:
    zh = place_names(SITES_ZH, DEVICES, english=False)
    en = place_names(SITES_EN, DEVICES, english=True)
    text = "设备 xizhou-zhoucheng-canteen 已断线 2 分钟（连接意外中断）"
    assert named(text, None, {}, zh) == "设备 周城村幸福小院食堂终端 已断线 2 分钟（连接意外中断）"
    assert named("kiosk xizhou-zhoucheng-gate offline", None, {}, en) == (
        "kiosk Zhoucheng Village Courtyard entrance kiosk offline"
    )
    # Without kiosk names a kiosk id stays whole rather than half replaced.
    assert named(text, None, {}, SITES_ZH) == text
    # A site id standing alone is replaced, the longer id first where one starts the other.
    assert named("xizhou-zhoucheng 与 xizhou", None, {}, zh) == "周城村幸福小院 与 喜洲镇"
