"""Cloud processes as a multi-machine deployment runs them, for the fault tests: `warmcard
ingest` workers and `warmcard console` instances on one store (every store in one PostgreSQL
database, or the same SQLite files on one machine), Mosquitto and InfluxDB; canteen kiosks of two
sites; what InfluxDB and each console count."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from cloud_ingest.pipeline.influx import InfluxV1
from cloud_ingest.pipeline.settings import InfluxSettings
from tests.support.console import logged_in
from tests.support.databases import StoreAt
from tests.support.ingest import import_registry_csv, write_all_day_sites
from warmcard.command.servers import Console, InfluxD, Ingest, Mosquitto

CANTEENS = 10  # five per site
PEOPLE = 20  # per site
METRICS_TOKEN = "failover-metrics-token-0123456789"


@dataclass
class Deployment:
    tmp: Path
    broker: Mosquitto
    influxd: InfluxD
    database: str
    store_at: StoreAt
    prefix: str
    workers: list[Ingest] = field(default_factory=list)
    consoles: list[Console] = field(default_factory=list)
    clients: dict[str, httpx.Client] = field(default_factory=dict)

    @property
    def sites(self) -> list[str]:
        return [f"{self.prefix}-site-a", f"{self.prefix}-site-b"]

    def canteen(self, n: int) -> str:
        return f"{self.prefix}-canteen-{n}"

    def site_of_canteen(self, n: int) -> str:
        return self.sites[n % 2]

    def person(self, n: int, i: int) -> str:
        """Person i of canteen n's site."""
        return f"P{(n % 2) * PEOPLE + i + 1:04d}"

    def write_registry(self) -> None:
        a, b = self.sites
        write_all_day_sites(
            self.tmp,
            {a: ("喜洲幸福食堂", "Xizhou canteen"), b: ("周城幸福食堂", "Zhoucheng canteen")},
        )
        devices = ["device_id,site_id,mode,debounce_s"]
        devices += [
            f"{self.canteen(n)},{self.site_of_canteen(n)},canteen,0" for n in range(CANTEENS)
        ]
        (self.tmp / "devices.csv").write_text("\n".join(devices) + "\n", encoding="utf-8")
        people = ["person_id,display_name,site_id"]
        cards = ["card_uid,person_id,active"]
        for i in range(1, 2 * PEOPLE + 1):
            people.append(f"P{i:04d},长者{i},{a if i <= PEOPLE else b}")
            cards.append(f"04:A1:B2:{i:02X},P{i:04d},1")
        (self.tmp / "people.csv").write_text("\n".join(people) + "\n", encoding="utf-8")
        (self.tmp / "cards.csv").write_text("\n".join(cards) + "\n", encoding="utf-8")
        import_registry_csv(
            self.store_at("registry"), self.tmp, "sites", "devices", "people", "cards"
        )

    def process_options(self) -> dict[str, Any]:
        shared: dict[str, Any] = {
            "broker": self.broker,
            "influx": self.influxd,
            "database": self.database,
            "metrics_token": METRICS_TOKEN,
            "extra_toml": "batch_ms = 50\nsession_expiry_s = 600\nlive_resync_s = 3600",
        }
        location = self.store_at("registry")
        if isinstance(location, str):  # PostgreSQL: every store in the one database
            shared["database_url"] = location
        else:  # one machine: the same files for every process
            shared |= {
                "registry_path": self.store_at("registry"),
                "console_db": self.store_at("console"),
                "deadletter_path": self.store_at("deadletters"),
            }
        return shared

    def start(self) -> None:
        shared = self.process_options()
        for n in (1, 2):
            worker = Ingest(self.tmp / f"ingest-{n}", client_id=f"ingest-{n}", **shared)
            console = Console(self.tmp / f"console-{n}", client_id=f"console-{n}", **shared)
            self.workers.append(worker)
            self.consoles.append(console)
        for proc in [*self.consoles, *self.workers]:
            proc.start(timeout=60)

    def stop(self) -> None:
        for client in self.clients.values():
            client.close()
        for proc in [*self.workers, *self.consoles]:
            proc.stop()

    # ---------------------------------------------------------------- what each side holds

    def influx(self) -> InfluxV1:
        return InfluxV1(InfluxSettings(url=self.influxd.url, database=self.database))

    def stored_seqs(self) -> dict[str, list[int]]:
        storage = self.influx()
        try:
            series = storage.query('SELECT "seq" FROM "taps" GROUP BY "device"')
        finally:
            storage.close()
        return {s.tags["device"]: [int(row[1]) for row in s.values] for s in series}

    def influx_meals(self) -> Counter[str]:
        storage = self.influx()
        try:
            series = storage.query(
                'SELECT count("seq") FROM "taps" WHERE "kind" = \'meal\' GROUP BY "site"'
            )
        finally:
            storage.close()
        return Counter({s.tags["site"]: int(s.values[0][1]) for s in series})

    def console_meals(self, console: Console) -> Counter[str]:
        """Today's meals per site, as the console's live state counts them (a session kept per
        console: the sessions are in the shared store and survive a console's restart)."""
        client = self.clients.get(console.client_id)
        if client is None:
            client = self.clients[console.client_id] = logged_in(console.url, "admin.dali")
        sites = client.get("/api/v1/occupancy").json()["sites"]
        return Counter({s["site_id"]: int(s["meals_total"] or 0) for s in sites})
