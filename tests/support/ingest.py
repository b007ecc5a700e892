"""Helpers for the cloud ingest tests: a registry, settings, a plain paho publisher, waiting."""

from __future__ import annotations

import subprocess
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from cloud_ingest.pipeline.influx import InfluxV1
from cloud_ingest.pipeline.settings import InfluxSettings
from cloud_ingest.registry.importer import import_csv
from cloud_ingest.registry.store import Registry
from cloud_ingest.settings import IngestSettings
from warmcard.contract import Kind, MealPeriod, TapEvent, events_topic
from warmcard.localtime import day_window
from warmcard.settings import MqttSettings
from warmcard.timestamps import format_ts, new_event_id, now_us

TZ = "Asia/Shanghai"


def wait_for(predicate: Callable[[], Any], timeout: float = 15.0, interval: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {predicate}")
        time.sleep(interval)


@contextmanager
def running(settings: IngestSettings) -> Iterator[Any]:
    """An in-process worker and console (tests.support.stack), subscribed, stopped however the
    block ends."""
    from tests.support.stack import Stack

    with Stack(settings) as stack:
        yield stack


def make_settings(
    tmp: Path, mosquitto: Any, influxd: Any, db: str, prefix: str, **kw: Any
) -> IngestSettings:
    values: dict[str, Any] = dict(
        mqtt=MqttSettings(port=mosquitto.port),
        client_id=f"ingest-{prefix}",
        share_group=f"g{prefix}",
        session_expiry_s=600,
        influx=InfluxSettings(url=influxd.url, database=db),
        registry_path=tmp / "registry.sqlite3",
        deadletter_path=tmp / "deadletter.sqlite3",
        batch_ms=50,
        live_resync_s=3600,
        console_db=tmp / "console.sqlite3",
        cookie_secure=False,
    )
    values.update(kw)
    return IngestSettings(**values)


def write_registry(
    tmp: Path, prefix: str, registry: Path | str | None = None, *, all_day: bool = False
) -> dict[str, str]:
    """Two sites; site A has an entrance and a canteen kiosk, site B an entrance kiosk; CSVs in
    `tmp`, imported into `registry` (default: tmp/registry.sqlite3).

    Site A opens 07:00-18:00, B 07:30-17:30 (what the hours rules test); `all_day`: both
    00:00-23:59, for tests whose kiosks run on the real clock (an entrance kiosk checks
    everyone out by itself at closing time, whenever the test happens to run)."""
    hours_a, hours_b = ("00:00,23:59", "00:00,23:59") if all_day else ("07:00,18:00", "07:30,17:30")
    ids = {
        "site_a": f"{prefix}-site-a",
        "site_b": f"{prefix}-site-b",
        "gate_a": f"{prefix}-gate-a",
        "canteen_a": f"{prefix}-canteen-a",
        "gate_b": f"{prefix}-gate-b",
    }
    (tmp / "sites.csv").write_text(
        "site_id,name_zh,name_en,tz,capacity,opening,closing,breakfast,lunch,dinner\n"
        f"{ids['site_a']},喜洲幸福小院,Xizhou courtyard,{TZ},40,{hours_a},"
        "07:00-09:00,11:00-13:00,17:00-19:00\n"
        f"{ids['site_b']},周城幸福小院,Zhoucheng courtyard,{TZ},30,{hours_b},,11:30-13:00,\n",
        encoding="utf-8",
    )
    (tmp / "devices.csv").write_text(
        "device_id,site_id,mode,debounce_s\n"
        f"{ids['gate_a']},{ids['site_a']},entrance,10\n"
        f"{ids['canteen_a']},{ids['site_a']},canteen,5\n"
        f"{ids['gate_b']},{ids['site_b']},entrance,\n",
        encoding="utf-8",
    )
    people = ["person_id,display_name,site_id"]
    cards = ["card_uid,person_id,active"]
    for i in range(1, 11):
        site = ids["site_a"] if i <= 6 else ids["site_b"]
        people.append(f"P{i:04d},长者{i},{site}")
        cards.append(f"04:A1:B2:{i:02X},P{i:04d},1")
    (tmp / "people.csv").write_text("\n".join(people) + "\n", encoding="utf-8")
    (tmp / "cards.csv").write_text("\n".join(cards) + "\n", encoding="utf-8")
    where = tmp / "registry.sqlite3" if registry is None else registry
    import_registry_csv(where, tmp, "sites", "devices", "people", "cards")
    return ids


def write_all_day_sites(folder: Path, sites: dict[str, tuple[str, str]]) -> None:
    """folder/sites.csv: each `site_id -> (name_zh, name_en)` open 00:00-23:59 in Dali's zone,
    capacity 80, no meal windows (the kiosks' defaults): kiosks on the real clock never close."""
    rows = [f"{site},{zh},{en},{TZ},80,00:00,23:59,,," for site, (zh, en) in sites.items()]
    (folder / "sites.csv").write_text(
        "site_id,name_zh,name_en,tz,capacity,opening,closing,breakfast,lunch,dinner\n"
        + "\n".join(rows)
        + "\n",
        encoding="utf-8",
    )


def import_registry_csv(registry_path: Path | str, folder: Path, *names: str) -> None:
    """Import folder/<name>.csv for each of `names` (sites, devices, people, cards) at once."""

    def csv(name: str) -> Path | None:
        return folder / f"{name}.csv" if name in names else None

    registry = Registry(registry_path)
    try:
        import_csv(
            registry,
            sites=csv("sites"),
            devices=csv("devices"),
            people=csv("people"),
            cards=csv("cards"),
        )
    finally:
        registry.close()


def write_ingest_toml(tmp: Path, settings: IngestSettings) -> Path:
    """The TOML file `warmcard ingest` / `warmcard reconcile --config` read for `settings`."""
    path = tmp / "ingest.toml"
    path.write_text(
        f'client_id = "{settings.client_id}"\n'
        f'registry_path = "{settings.registry_path}"\n'
        f'deadletter_path = "{settings.deadletter_path}"\n'
        f'tz = "{TZ}"\n'
        f"[mqtt]\nport = {settings.mqtt.port}\n"
        f'[influx]\nurl = "{settings.influx.url}"\ndatabase = "{settings.influx.database}"\n'
    )
    return path


def today_base_us() -> int:
    """A time safely inside today in the site tz (so live numbers count the events)."""
    now = now_us()
    _, start, _ = day_window(ZoneInfo(TZ), now)
    return max(start + 1_000_000, now - 120_000_000)


@dataclass
class EventMaker:
    """Events for one device: strictly increasing seq and time, as a kiosk makes them."""

    device_id: str
    base_us: int = field(default_factory=today_base_us)
    seq: int = 0

    def make(
        self, kind: Kind, person: str | None, meal: MealPeriod | None = None, **kw: Any
    ) -> TapEvent:
        self.seq += 1
        ts = self.base_us + self.seq * 1000
        card_uid = kw.pop("card_uid", None) or f"04A1B2{int(person[1:]) if person else 0xEE:02X}"
        return TapEvent(
            event_id=new_event_id(ts),
            device_id=self.device_id,
            seq=self.seq,
            ts=format_ts(ts),
            card_uid=card_uid,
            kind=kind,
            meal_period=meal,
            person_id=person,
            **kw,
        )


class Publisher:
    """A plain paho MQTT 5 client, as any kiosk would use."""

    def __init__(self, port: int) -> None:
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"pub-{uuid.uuid4().hex[:8]}",
            protocol=mqtt.MQTTv5,
        )
        self.client.max_queued_messages_set(0)
        self.client.max_inflight_messages_set(1000)
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def publish_raw(self, topic: str, payload: bytes, qos: int = 1, retain: bool = False) -> None:
        info = self.client.publish(topic, payload, qos=qos, retain=retain)
        info.wait_for_publish(10)

    def publish_async(self, event: TapEvent) -> mqtt.MQTTMessageInfo:
        """QoS 1 publish without waiting; the info's wait_for_publish() waits for the PUBACK."""
        return self.client.publish(events_topic(event.device_id), event.to_bytes(), qos=1)

    def publish(self, events: list[TapEvent]) -> None:
        infos = [
            self.client.publish(events_topic(e.device_id), e.to_bytes(), qos=1) for e in events
        ]
        for info in infos:
            info.wait_for_publish(30)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def influx_counts(settings: IngestSettings) -> Counter[tuple[str, str]]:
    storage = InfluxV1(settings.influx)
    try:
        series = storage.query('SELECT count("seq") FROM "taps" GROUP BY "site", "kind"')
    finally:
        storage.close()
    return Counter({(s.tags["site"], s.tags["kind"]): s.values[0][1] for s in series})


def scenario(ids: dict[str, str]) -> tuple[list[TapEvent], Counter[tuple[str, str]]]:
    """A morning at two courtyards."""
    gate_a, canteen_a, gate_b = (EventMaker(ids[k]) for k in ("gate_a", "canteen_a", "gate_b"))
    events = [
        gate_a.make(Kind.CHECK_IN, "P0001"),
        gate_a.make(Kind.CHECK_IN, "P0002"),
        gate_a.make(Kind.CHECK_IN, "P0003"),
        gate_a.make(Kind.CHECK_OUT, "P0002"),
        gate_a.make(Kind.UNKNOWN_CARD, None, card_uid="04998877"),
        canteen_a.make(Kind.MEAL, "P0001", MealPeriod.LUNCH),
        canteen_a.make(Kind.MEAL, "P0003", MealPeriod.LUNCH),
        canteen_a.make(Kind.MEAL_REPEAT, "P0001", MealPeriod.LUNCH),
        canteen_a.make(Kind.MEAL, "P0004", MealPeriod.BREAKFAST),
        gate_b.make(Kind.CHECK_IN, "P0007"),
        gate_b.make(Kind.CHECK_OUT, "P0007", auto=True),
        gate_b.make(Kind.CHECK_IN, "P0008"),
    ]
    a, b = ids["site_a"], ids["site_b"]
    expected = Counter(
        {
            (a, "check_in"): 3,
            (a, "check_out"): 1,
            (a, "unknown_card"): 1,
            (a, "meal"): 3,
            (a, "meal_repeat"): 1,
            (b, "check_in"): 2,
            (b, "check_out"): 1,
        }
    )
    return events, expected


def live_numbers(service: Any, ids: dict[str, str]) -> tuple[object, ...]:
    sites = {s["site_id"]: s for s in service.live.snapshot()["sites"]}
    a, b = sites[ids["site_a"]], sites[ids["site_b"]]
    return (
        a["present"],
        a["arrivals"],
        a["meals"],
        a["meal_repeats"],
        a["unknown_cards"],
        b["present"],
        b["arrivals"],
        b["meals_total"],
    )


EXPECTED_LIVE = (2, 3, {"breakfast": 1, "lunch": 2, "dinner": 0}, 1, 1, 1, 2, 0)


def check_live(service: Any, ids: dict[str, str]) -> None:
    """The scenario's live numbers; waits briefly, since live state follows the InfluxDB write."""
    try:
        wait_for(lambda: live_numbers(service, ids) == EXPECTED_LIVE, timeout=5)
    except AssertionError:
        assert live_numbers(service, ids) == EXPECTED_LIVE


def password_file(run_dir: Path, user: str, password: str) -> Path:
    """A Mosquitto password file (mosquitto_passwd) that knows one account."""
    passwords = run_dir / "passwords"
    subprocess.run(
        ["mosquitto_passwd", "-c", "-b", str(passwords), user, password],
        check=True,
        capture_output=True,
    )
    passwords.chmod(0o600)
    return passwords


@contextmanager
def local_ingest(
    tmp: Path, broker: Any, influx: Any, database: str, prefix: str, **options: Any
) -> Iterator[Any]:
    """The cloud as systemd runs it, on the registry in tmp (tests.support's layout): a
    `warmcard ingest` worker and a `warmcard console` child; yields the console (its `url`)."""
    from warmcard.command.servers import Console, Ingest

    shared: dict[str, Any] = {
        "broker": broker,
        "influx": influx,
        "database": database,
        "registry_path": tmp / "registry.sqlite3",
        "console_db": tmp / "console.sqlite3",
        "deadletter_path": tmp / "deadletter.sqlite3",
        "extra_toml": "batch_ms = 50",
    }
    shared.update(options)
    console = Console(tmp / "console", client_id=f"console-{prefix}", **shared)
    worker = Ingest(tmp / "ingest", client_id=f"ingest-{prefix}", **shared)
    console.start(timeout=60)
    try:
        worker.start(timeout=60)
        try:
            yield console
        finally:
            worker.stop()
    finally:
        console.stop()
