"""Packets sized for what Warmcard sends (issue #9): max_packet_size 64 KiB, rosters in parts.

Runs the production broker config (deploy/mosquitto) with a real kiosk on its TLS listener and
the console's Downlink on the loopback one.
"""

from __future__ import annotations

import random
import time
import uuid
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from sqlalchemy import text

from cloud_ingest.pipeline.downlink import Downlink
from cloud_ingest.registry.store import Registry
from firmware_gateway.clock import SystemClock
from firmware_gateway.readers.sim import SimReader
from firmware_gateway.settings import GatewaySettings
from firmware_gateway.uplink import UplinkTiming
from kiosk.feedback import LogFeedback
from kiosk.runtime import Kiosk
from tests.support.broker import Secure, connect
from tests.support.ingest import EventMaker, import_registry_csv, wait_for
from tests.support.mqtt_client import Client, accepted
from warmcard.contract import (
    MAX_ROSTER_MESSAGE_BYTES,
    Kind,
    MealPeriod,
    Roster,
    RosterEntry,
    events_topic,
    roster_part_topic,
    roster_topic,
)
from warmcard.roster_split import join_roster, split_roster
from warmcard.settings import MqttSettings

SURNAMES = "李王张杨赵段字尹何苏杜罗"
GIVEN = "秀英桂兰玉珍志明建国淑芬丽华德福海燕金凤"


def site_people(site: str, n: int, rng: random.Random) -> tuple[list[str], list[str]]:
    """people.csv and cards.csv lines for n people with Bai/Han names of 2-4 characters."""
    people, cards = [], []
    for i in range(n):
        name = rng.choice(SURNAMES) + "".join(rng.choices(GIVEN, k=rng.randint(1, 3)))
        person = f"P{uuid.UUID(int=rng.getrandbits(128)).hex[:12]}"
        people.append(f"{person},{name},{site}")
        cards.append(f"04{i:012X},{person},1")
    return people, cards


def make_registry(tmp: Path, site: str, device: str, n: int) -> Registry:
    people, cards = site_people(site, n, random.Random(n))
    (tmp / "sites.csv").write_text(
        "site_id,name_zh,name_en,tz,capacity,opening,closing,breakfast,lunch,dinner\n"
        f"{site},喜洲幸福食堂,Xizhou canteen,Asia/Shanghai,{n},07:00,18:00,"
        "07:00-09:00,11:00-13:00,17:00-19:00\n",
        encoding="utf-8",
    )
    (tmp / "devices.csv").write_text(
        f"device_id,site_id,mode,debounce_s\n{device},{site},canteen,5\n", encoding="utf-8"
    )
    (tmp / "people.csv").write_text(
        "person_id,display_name,site_id\n" + "\n".join(people) + "\n", encoding="utf-8"
    )
    (tmp / "cards.csv").write_text(
        "card_uid,person_id,active\n" + "\n".join(cards) + "\n", encoding="utf-8"
    )
    import_registry_csv(tmp / "registry.sqlite3", tmp, "sites", "devices", "people", "cards")
    return Registry(tmp / "registry.sqlite3")


def test_a_real_event_and_a_300_person_canteen_roster_fit_one_packet(tmp_path: Path) -> None:
    event = EventMaker("k-xz-001-canteen-long-id").make(
        Kind.MEAL, "P7f3a91c2d4e5", MealPeriod.LUNCH, card_uid="04A1B2C3D4E5F6A1B2C3"
    )
    registry = make_registry(tmp_path, "s-xz-canteen", "k-xz-001-canteen", 300)
    try:
        roster = registry.roster("s-xz-canteen")
    finally:
        registry.close()
    size = len(roster.to_bytes())
    print(f"event {len(event.to_bytes())} B; 300-person roster {size} B")
    assert len(event.to_bytes()) < 1024
    assert size < MAX_ROSTER_MESSAGE_BYTES // 2
    assert split_roster(roster) == [roster]  # one message, as a v1.0 kiosk expects
    assert b'"part' not in roster.to_bytes()


def test_split_roster_parts_fit_and_join_back() -> None:
    entries = [
        RosterEntry(card_uid=f"04{i:012X}", person_id=f"P{i:012x}", display_name="名" * 64)
        for i in range(3000)
    ]
    roster = Roster(site_id="s-big", version="abc", entries=entries)
    parts = split_roster(roster)
    assert len(roster.to_bytes()) > 10 * MAX_ROSTER_MESSAGE_BYTES
    assert len(parts) > 10
    assert all(len(p.to_bytes()) <= MAX_ROSTER_MESSAGE_BYTES for p in parts)
    assert join_roster(list(reversed(parts))) == roster
    with pytest.raises(ValueError, match="do not make"):
        join_roster(parts[:-1])


def test_a_device_packet_over_64_kib_is_refused(secure: Secure) -> None:
    """Before: max_packet_size 1114112, a device's 1 MiB event got PUBACK 0x00 and was queued."""
    device = f"k-{uuid.uuid4().hex[:6]}-big"
    secure.device(device)
    clients: list[Client] = []
    try:
        # MQTT 3.1.1: paho knows no server limit and sends it; the broker must refuse it.
        big = connect(clients, secure, device, protocol=mqtt.MQTTv311)
        assert big.connected
        assert accepted(big.publish(events_topic(device), b"x" * 4096))
        info = big.paho.publish(events_topic(device), b"x" * 100 * 1024, qos=1)
        assert big._wait(lambda: big.disconnected is not None, 5), "not disconnected"
        assert info.mid not in big.acks
    finally:
        for c in clients:
            c.close()


def test_a_large_roster_reaches_a_kiosk_in_parts(secure: Secure, tmp_path: Path) -> None:
    """1,500 people at one site (a town's cards): over one packet, so sent in parts that the
    kiosk joins; before the change it was one 1 MiB-limited message."""
    tag = uuid.uuid4().hex[:6]
    site, device = f"s-{tag}", f"k-{tag}-canteen"
    secure.device(device)
    secure.device(device)  # re-provisioning gives an existing role the parts' topics, once
    registry = make_registry(tmp_path, site, device, 1500)
    roster = registry.roster(site)
    assert len(roster.to_bytes()) > 65536
    bundle = secure.bundles / device
    settings = GatewaySettings(
        device_id=device,
        data_dir=tmp_path / "kiosk",
        mqtt=MqttSettings(
            port=secure.broker.tls_port,
            username=device,
            tls=True,
            ca_file=bundle / "ca.crt",
            cert_file=bundle / "device.crt",
            key_file=bundle / "device.key",
        ),
        heartbeat_s=1.0,
        screen_port=None,
    )
    kiosk = Kiosk(
        settings,
        SimReader(),
        LogFeedback(),
        SystemClock(),
        timing=UplinkTiming(backoff_min_s=0.05, backoff_max_s=0.4, idle_wait_s=0.2),
    )
    down = Client("downlink", secure.passwords["downlink"])
    try:
        assert down.connect(secure.broker.port) is not None and down.connected

        class Pub:
            def publish(self, topic: str, payload: bytes, qos: int, retain: bool) -> None:
                assert accepted(down.publish(topic, payload, retain=retain)), topic

        downlink = Downlink(registry, Pub())
        published = downlink.publish_all()
        parts = split_roster(roster)
        assert len(parts) >= 2 and published == len(parts) + 1  # + the config
        kiosk.start()
        wait_for(lambda: kiosk.roster is not None and len(kiosk.roster.entries) == 1500, 15)
        assert kiosk.roster == roster
        last = roster.entries[-1]
        found = kiosk.cache.lookup(last.card_uid)
        assert found is not None and found.display_name == last.display_name
        # The roster shrinks to one message: the stale part topics are cleared on the broker.
        with registry.change() as db:
            db.execute(text("UPDATE cards SET active = 0 WHERE card_uid > '040000000000C8'"))
        registry.refresh()
        downlink.publish_all(changed_only=True)
        wait_for(lambda: kiosk.roster is not None and len(kiosk.roster.entries) == 201, 15)
        reader = connect([], secure, "downlink")
        assert reader.subscribe(roster_part_topic(device, 2)) is not None
        time.sleep(0.5)
        assert reader.received(roster_part_topic(device, 2), timeout=0.5) == []
        assert reader.received(roster_topic(device), timeout=0.1) == []
        reader.close()
    finally:
        kiosk.stop()
        down.close()
        registry.close()
