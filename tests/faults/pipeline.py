"""The fault suite's harness: one whole pipeline per test, on real parts, and its final check.

Kiosk (in-process running kiosk + SimReader, or a `warmcard kiosk` child fed through `sim:fifo=`)
-> TcpProxy -> Mosquitto (per test) -> ingest (in-process Stack or `warmcard ingest`
children) -> InfluxDB (session server, per-test database).

`Pipeline.check()` is the one verdict every scenario ends with: per device, the set of seqs in
InfluxDB equals the set committed in the kiosk's outbox (which keeps acknowledged events), no
seq is stored twice, and every count per site and kind equals the number of committed taps.
"""

from __future__ import annotations

import contextlib
import random
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
from pydantic import SecretStr

from cloud_ingest.ops import reconcile
from cloud_ingest.pipeline.consumer import BatchProcessor, Consumer, Metrics
from cloud_ingest.pipeline.deadletter import DeadLetterStore
from cloud_ingest.pipeline.influx import InfluxV1
from cloud_ingest.pipeline.settings import InfluxSettings
from cloud_ingest.registry.store import Registry
from cloud_ingest.settings import IngestSettings
from firmware_gateway.clock import SystemClock
from firmware_gateway.readers.sim import SimReader
from firmware_gateway.settings import GatewaySettings
from kiosk.runtime import Kiosk as RunningKiosk
from tests.faults.kiosks import (
    DEVICES,
    FAST,
    METRICS_TOKEN,
    PEOPLE,
    Kiosk,
    KioskProcess,
    RecordingFeedback,
    card,
    missing_seqs,
    read_outbox,
)
from tests.faults.tcpproxy import TcpProxy
from tests.support.ingest import import_registry_csv, wait_for, write_all_day_sites
from tests.support.stack import Stack
from warmcard.command.servers import InfluxD, Ingest, Mosquitto
from warmcard.contract import DeviceConfig, TapEvent
from warmcard.settings import MqttSettings


@dataclass
class Pipeline:
    tmp: Path
    influxd: InfluxD
    db: str
    secure_dir: Path | None = None
    # PostgreSQL (every store in this database, as several machines run it); None: SQLite files
    database_url: str | None = None
    broker: Mosquitto = field(init=False)
    proxy: TcpProxy = field(init=False)  # kiosks reach the broker through this
    ids: dict[str, str] = field(init=False)
    kiosks: list[Kiosk | KioskProcess] = field(default_factory=list)
    services: list[Any] = field(default_factory=list)
    processes: list[Ingest] = field(default_factory=list)
    proxies: list[TcpProxy] = field(default_factory=list)
    service_mqtt: MqttSettings = field(default_factory=MqttSettings)
    # Ingest's status/downlink connection; its own user on the secure broker.
    link_mqtt: MqttSettings | None = None
    closers: list[Callable[[], None]] = field(default_factory=list)
    # Not guessable (ingest refuses a short group when the broker has users).
    share_group: str = field(default_factory=lambda: f"ingest-{uuid.uuid4().hex}")

    def __post_init__(self) -> None:
        tag = uuid.uuid4().hex[:6]
        self.ids = {"site_a": f"f{tag}-site-a", "site_b": f"f{tag}-site-b"}
        self.ids |= {key: f"f{tag}-{key.replace('_', '-')}" for key in DEVICES}
        self.broker = Mosquitto(self.tmp / "broker", secure_dir=self.secure_dir)
        self.broker.start()
        self.proxy = self.new_proxy(self.broker.port)
        self.registry_path: Path | str = self.database_url or self.tmp / "registry.sqlite3"
        self._write_registry()

    # ------------------------------------------------------------------ parts

    def new_proxy(self, target_port: int) -> TcpProxy:
        proxy = TcpProxy(target_port)
        self.proxies.append(proxy)
        return proxy

    def site_of(self, device_id: str) -> str:
        for key, (site, _) in DEVICES.items():
            if self.ids[key] == device_id:
                return self.ids[site]
        raise KeyError(device_id)

    def _write_registry(self) -> None:
        a, b = self.ids["site_a"], self.ids["site_b"]
        write_all_day_sites(
            self.tmp,
            {a: ("喜洲幸福小院", "Xizhou courtyard"), b: ("周城幸福小院", "Zhoucheng courtyard")},
        )
        devices = ["device_id,site_id,mode,debounce_s"]
        devices += [f"{self.ids[k]},{self.ids[s]},{m.value},0" for k, (s, m) in DEVICES.items()]
        (self.tmp / "devices.csv").write_text("\n".join(devices) + "\n", encoding="utf-8")
        people = ["person_id,display_name,site_id"]
        cards = ["card_uid,person_id,active"]
        for i in range(PEOPLE):
            people.append(f"P{i:04d},长者{i},{a if i % 2 else b}")
            cards.append(f"{card(i)},P{i:04d},1")
        (self.tmp / "people.csv").write_text("\n".join(people) + "\n", encoding="utf-8")
        (self.tmp / "cards.csv").write_text("\n".join(cards) + "\n", encoding="utf-8")
        import_registry_csv(self.registry_path, self.tmp, "sites", "devices", "people", "cards")

    def config(self, key: str) -> DeviceConfig:
        site, mode = DEVICES[key]
        return DeviceConfig(
            device_id=self.ids[key],
            site_id=self.ids[site],
            mode=mode,
            debounce_s=0,
            closing="23:59",
        )

    def ingest_settings(self, name: str = "ingest-1", **kw: Any) -> IngestSettings:
        values: dict[str, Any] = dict(
            mqtt=self.service_mqtt.model_copy(update={"port": self.broker.port}),
            link_mqtt=self.link_mqtt.model_copy(update={"port": self.broker.port})
            if self.link_mqtt
            else None,
            client_id=name,
            share_group=self.share_group,
            session_expiry_s=600,
            influx=self.influx_settings(),
            registry_path=self.tmp / "registry.sqlite3",
            deadletter_path=self.tmp / f"{name}-deadletter.sqlite3",
            database={"url": self.database_url},
            batch_ms=50,
            batch_max=500,
            live_resync_s=3600,
        )
        values.update(kw)
        return IngestSettings(**values)

    def start_ingest(self, name: str = "ingest-1", **kw: Any) -> Stack:
        """The real Stack in this process; waits until it is subscribed."""
        service = Stack(self.ingest_settings(name, **kw))
        service.start()
        self.services.append(service)
        wait_for(service.consumer.subscribed.is_set, timeout=15)
        return service

    def start_consumer(self, name: str = "ingest-1", **kw: Any) -> Consumer:
        """Only the event consumer (BatchProcessor + Consumer), without status and downlink."""
        settings = self.ingest_settings(name, **kw)
        registry = Registry(settings.store("registry"))
        processor = BatchProcessor(
            InfluxV1(settings.influx),
            DeadLetterStore(settings.store("deadletters")),
            registry,
            None,
            Metrics(),
        )
        consumer = Consumer(settings, processor)
        consumer.start()
        self.services.append(consumer)
        self.closers.extend([processor.storage.close, processor.deadletters.close, registry.close])
        wait_for(consumer.subscribed.is_set, timeout=15)
        return consumer

    def ingest_process(self, name: str = "ingest-1", **kw: Any) -> Ingest:
        """`warmcard ingest` as a child process (for SIGKILL)."""
        proc = Ingest(
            self.tmp / name,
            broker=self.broker,
            influx=self.influxd,
            database=self.db,
            client_id=name,
            registry_path=self.tmp / "registry.sqlite3",
            database_url=self.database_url,
            extra_toml="batch_ms = 50\nbatch_max = 500\nsession_expiry_s = 600\n",
            metrics_token=METRICS_TOKEN,
            **kw,
        )
        proc.start()
        self.processes.append(proc)
        return proc

    def kiosk(
        self,
        key: str,
        *,
        clock: SystemClock | None = None,
        data_dir: Path | None = None,
        mqtt: MqttSettings | None = None,
        **kw: Any,
    ) -> Kiosk:
        device = self.ids[key]
        data_dir = data_dir or self.tmp / "kiosks" / device
        settings = GatewaySettings(
            device_id=device,
            data_dir=data_dir,
            mqtt=mqtt or MqttSettings(port=self.proxy.port),
            heartbeat_s=2.0,
            initial_config=self.config(key),
            screen_port=0,
            min_free_bytes=kw.pop("min_free_bytes", 0),
        )
        reader = SimReader()
        feedback = RecordingFeedback()
        gateway = RunningKiosk(
            settings,
            reader,
            feedback,
            clock or SystemClock(),
            rng=random.Random(7),
            timing=FAST,
            tick_s=0.2,
            poll_timeout_s=0.05,
            **kw,
        )
        gateway.start()
        kiosk = Kiosk(device, gateway, reader, feedback, data_dir)
        self.kiosks.append(kiosk)
        return kiosk

    def kiosk_process(self, key: str) -> KioskProcess:
        device = self.ids[key]
        data_dir = self.tmp / "kiosks" / device
        data_dir.mkdir(parents=True, exist_ok=True)
        fifo = self.tmp / "kiosks" / f"{device}.taps"
        config = self.config(key)
        meals = "".join(
            f'[[initial_config.meals]]\nperiod = "{w.period.value}"\n'
            f'start = "{w.start}"\nend = "{w.end}"\n'
            for w in config.meals
        )
        path = self.tmp / "kiosks" / f"{device}.toml"
        path.write_text(
            f'device_id = "{device}"\nreader = "sim:fifo={fifo}"\ndata_dir = "{data_dir}"\n'
            f"min_free_bytes = 0\nheartbeat_s = 2.0\nscreen_port = 0\n\n"
            f'[mqtt]\nhost = "127.0.0.1"\nport = {self.proxy.port}\n\n'
            f'[initial_config]\ndevice_id = "{device}"\nsite_id = "{config.site_id}"\n'
            f'mode = "{config.mode.value}"\ndebounce_s = 0\nclosing = "23:59"\n{meals}'
        )
        kiosk = KioskProcess(device, data_dir, path, fifo)
        kiosk.start()
        self.kiosks.append(kiosk)
        return kiosk

    # ------------------------------------------------------------------ reading InfluxDB

    def influx_settings(self) -> InfluxSettings:
        """Where ingest and the checks read and write; with the credentials of a secure server."""
        if not self.influxd.secure:
            return InfluxSettings(url=self.influxd.url, database=self.db)
        return InfluxSettings(
            url=self.influxd.url,
            database=self.db,
            username=self.influxd.user,
            password=SecretStr(self.influxd.password),
        )

    def influx(self) -> InfluxV1:
        return InfluxV1(self.influx_settings())

    def query(self, influxql: str) -> list[Any]:
        storage = self.influx()
        try:
            return storage.query(influxql)
        finally:
            storage.close()

    def stored(self, device_id: str) -> list[dict[str, Any]]:
        """Every point of a device: time, seq, event_id, clock_synced."""
        rows: list[dict[str, Any]] = []
        for s in self.query(
            f'SELECT "seq", "event_id", "clock_synced" FROM "taps" WHERE device=\'{device_id}\''
        ):
            rows.extend(s.rows())
        return rows

    def counts(self) -> Counter[tuple[str, str]]:
        series = self.query('SELECT count("seq") FROM "taps" GROUP BY "site", "kind"')
        return Counter({(s.tags["site"], s.tags["kind"]): s.values[0][1] for s in series})

    # ------------------------------------------------------------------ the verdict

    def committed(self, devices: Iterable[str] | None = None) -> dict[str, list[TapEvent]]:
        """Every event each kiosk's outbox holds (acked ones are retained)."""
        out: dict[str, list[TapEvent]] = {}
        for kiosk in self.kiosks:
            if devices is not None and kiosk.device_id not in devices:
                continue
            out.setdefault(kiosk.device_id, [])
            if kiosk.outbox_path.exists():
                out[kiosk.device_id] = [e for _, _, e in read_outbox(kiosk.outbox_path)]
        return out

    def gaps(self) -> dict[str, list[int]]:
        """Per device, committed seqs missing from InfluxDB."""
        result = {}
        for device, events in self.committed().items():
            stored = {int(r["seq"]) for r in self.stored(device)}
            result[device] = missing_seqs(stored, {e.seq for e in events})
        return result

    def check(self, timeout: float = 30.0, *, extra: Counter[tuple[str, str]] | None = None) -> int:
        """Wait until InfluxDB matches every outbox, then assert it exactly; returns total taps.

        `extra`: points expected beyond the outboxes (e.g. events of a device with no kiosk here).
        """
        problems: list[str] = []
        snapshot: dict[str, list[TapEvent]] = {}

        def matches() -> bool:
            problems.clear()
            snapshot.clear()
            snapshot.update(self.committed())
            for device, events in snapshot.items():
                seqs = [int(r["seq"]) for r in self.stored(device)]
                want = {e.seq for e in events}
                if len(seqs) != len(set(seqs)) or set(seqs) != want:
                    missing = sorted(want - set(seqs))
                    problems.append(
                        f"{device}: {len(want)} committed, {len(seqs)} stored, "
                        f"missing {missing[:10]}{'...' if len(missing) > 10 else ''}"
                    )
            # The outboxes must not have moved while InfluxDB was read.
            return not problems and self.committed() == snapshot

        deadline = time.monotonic() + timeout
        while not matches():
            if time.monotonic() > deadline:
                raise AssertionError("InfluxDB does not match the outboxes: " + "; ".join(problems))
            time.sleep(0.2)
        expected: Counter[tuple[str, str]] = Counter()
        for device, events in snapshot.items():
            for event in events:
                expected[(self.site_of(device), event.kind.value)] += 1
            # Each stored point is the committed event itself (same event id for the same seq).
            ids = {int(r["seq"]): r["event_id"] for r in self.stored(device)}
            assert ids == {e.seq: e.event_id for e in events}, device
            # No seq reused or skipped: the outbox holds exactly 1..n.
            assert [e.seq for e in events] == list(range(1, len(events) + 1)), device
        expected.update(extra or Counter())
        assert self.counts() == expected
        self.assert_reconciled(snapshot)
        return sum(len(v) for v in snapshot.values())

    def assert_reconciled(self, snapshot: dict[str, list[TapEvent]]) -> None:
        """`warmcard reconcile`'s own verdict: zero gaps, zero conflicts on every day with taps."""
        registry = Registry(self.registry_path)
        storage = self.influx()
        try:
            for device, events in snapshot.items():
                tz = ZoneInfo(registry.site(self.site_of(device)).tz)  # type: ignore[union-attr]
                days = sorted({datetime.fromtimestamp(e.ts_us / 1e6, tz).date() for e in events})
                for day in days:
                    report = reconcile.check(storage, registry, [device], day)
                    assert report.clean, report.as_json()
        finally:
            storage.close()
            registry.close()

    # ------------------------------------------------------------------ teardown

    def close(self) -> None:
        for kiosk in self.kiosks:
            with contextlib.suppress(Exception):
                kiosk.stop()
        for service in self.services:
            with contextlib.suppress(Exception):
                service.stop()
        for close in self.closers:
            close()
        for proc in self.processes:
            proc.stop()
        for proxy in self.proxies:
            proxy.close()
        self.broker.stop()


def health(ingest: Ingest) -> dict[str, Any]:
    """An ingest child's /healthz with its details (the metrics token unlocks them)."""
    auth = {"Authorization": f"Bearer {METRICS_TOKEN}"}
    body: dict[str, Any] = httpx.get(f"{ingest.url}/healthz", headers=auth).json()
    return body


def wait_until(predicate: Callable[[], Any], timeout: float = 30.0) -> Any:
    return wait_for(predicate, timeout=timeout, interval=0.1)
