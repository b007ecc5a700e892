"""`warmcard demo`: the whole pipeline on real servers, with simulated kiosks and a live page.

It starts Mosquitto and InfluxDB with the repo's configs in a local run folder, fills the
registry with fictional Dali courtyards, starts ingest, then simulated kiosks (an entrance and
a canteen per site) that play a day compressed into about 25 minutes: the sites' opening hours
and meal windows are set relative to the demo's start, so every tap carries the real time.
"""

from __future__ import annotations

import csv
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated
from zoneinfo import ZoneInfo

import typer

from warmcard.command.demo_seed import SeedSite, make_seed
from warmcard.command.servers import Console, InfluxD, Ingest, Mosquitto, free_port
from warmcard.localtime import DEFAULT_TZ

DEMO_TZ = DEFAULT_TZ

# The console's area hierarchy for the seeded courtyards (path, 中文, English).
DEMO_AREAS = [
    ("dali", "大理州", "Dali Prefecture"),
    ("dali/dali-city", "大理市", "Dali City"),
    ("dali/eryuan", "洱源县", "Eryuan County"),
    ("dali/eryuan/cibihu", "茈碧湖镇", "Cibihu"),
    ("dali/dali-city/xizhou", "喜洲镇", "Xizhou"),
    ("dali/dali-city/wanqiao", "湾桥镇", "Wanqiao"),
    ("dali/dali-city/yinqiao", "银桥镇", "Yinqiao"),
    ("dali/dali-city/dali-town", "大理镇", "Dali Town"),
    ("dali/dali-city/shuanglang", "双廊镇", "Shuanglang"),
    ("dali/dali-city/haidong", "海东镇", "Haidong"),
]
SITE_TOWNSHIP = {
    "xizhou-zhoucheng": "dali/dali-city/xizhou",
    "wanqiao-zhonghe": "dali/dali-city/wanqiao",
    "yinqiao-shuanglang": "dali/dali-city/yinqiao",
    "dali-gucheng": "dali/dali-city/dali-town",
    "shuanglang-dajian": "dali/dali-city/shuanglang",
    "haidong-nanhu": "dali/dali-city/haidong",
}
DEMO_ADMIN = ("demo-admin", "dali")  # administrator of the whole prefecture
DEMO_VIEWER = ("xizhou-viewer", "dali/dali-city/xizhou")  # sees one township only


def _port(preferred: int) -> int:
    """The usual port when it is free, so the URL is predictable; any free port otherwise."""
    import socket

    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", preferred))
        except OSError:
            return free_port()
    return preferred


def compressed_day(now: datetime) -> dict[str, str]:
    """Opening hours and meal windows for a day played in ~25 minutes from `now` (site time)."""
    # Near midnight the day would wrap to tomorrow; start it earlier instead.
    base = min(now, now.replace(hour=23, minute=30, second=0, microsecond=0))

    def at(minutes: int) -> str:
        return (base + timedelta(minutes=minutes)).strftime("%H:%M")

    return {
        "opening": at(-1),
        "closing": at(25),
        "breakfast": f"{at(1)}-{at(6)}",
        "lunch": f"{at(9)}-{at(15)}",
        "dinner": f"{at(18)}-{at(23)}",
    }


def write_seed_csvs(folder: Path, sites: list[SeedSite], day: dict[str, str]) -> dict[str, Path]:
    """The registry CSV files (docs/registry-csv.md) for the seed."""
    folder.mkdir(parents=True, exist_ok=True)
    tables: dict[str, tuple[list[str], list[list[object]]]] = {
        "sites": (
            [
                "site_id",
                "name_zh",
                "name_en",
                "tz",
                "capacity",
                "opening",
                "closing",
                "breakfast",
                "lunch",
                "dinner",
            ],
            [
                [
                    s.site_id,
                    s.name_zh,
                    s.name_en,
                    DEMO_TZ,
                    s.capacity,
                    day["opening"],
                    day["closing"],
                    day["breakfast"],
                    day["lunch"],
                    day["dinner"],
                ]
                for s in sites
            ],
        ),
        "devices": (
            ["device_id", "site_id", "mode", "debounce_s"],
            [
                row
                for s in sites
                for row in (
                    [s.entrance_device, s.site_id, "entrance", 10],
                    [s.canteen_device, s.site_id, "canteen", 10],
                )
            ],
        ),
        "people": (
            ["person_id", "display_name", "site_id"],
            [[p.person_id, p.display_name, s.site_id] for s in sites for p in s.people],
        ),
        "cards": (
            ["card_uid", "person_id", "active"],
            [[p.card_uid, p.person_id, 1] for s in sites for p in s.people],
        ),
    }
    return write_csv_tables(folder, tables)


def write_csv_tables(
    folder: Path, tables: Mapping[str, tuple[Sequence[str], Sequence[Sequence[object]]]]
) -> dict[str, Path]:
    """`folder/<name>.csv` for each table (header, rows), UTF-8; their paths by name."""
    paths = {}
    for name, (header, rows) in tables.items():
        path = folder / f"{name}.csv"
        with path.open("w", newline="", encoding="utf-8") as out:
            writer = csv.writer(out)
            writer.writerow(header)
            writer.writerows(rows)
        paths[name] = path
    return paths


def import_seed(registry_at: Path | str, csvs: dict[str, Path]) -> None:
    """Import the seed's CSV files into the registry at `registry_at` (a file or database URL)."""
    from cloud_ingest.registry.importer import import_csv
    from cloud_ingest.registry.store import Registry

    registry = Registry(registry_at)
    try:
        import_csv(
            registry,
            sites=csvs.get("sites"),
            devices=csvs.get("devices"),
            people=csvs.get("people"),
            cards=csvs.get("cards"),
        )
    finally:
        registry.close()


def seed_care(registry_at: Path | str, alerts_at: Path | str, sites: list[SeedSite]) -> int:
    """Flag the seed's elders living alone (flagged days ago, so a visit is due from the start)
    and give them a phone and address; returns how many."""
    from cloud_ingest.alerts.store import AlertStore
    from cloud_ingest.registry.contacts import set_contact
    from cloud_ingest.registry.store import Registry
    from warmcard.timestamps import now_us

    now = now_us()
    flagged = [p for s in sites for p in s.people if p.lives_alone_days is not None]
    registry, alerts = Registry(registry_at), AlertStore(alerts_at)
    try:
        for p in flagged:
            days = p.lives_alone_days or 0
            alerts.set_flags([(p.person_id, "lives_alone", True)], now - days * 86_400_000_000)
            set_contact(registry, p.person_id, p.phone, p.address, "demo", now)
    finally:
        registry.close()
        alerts.close()
    return len(flagged)


def setup_console(db: Path, folder: Path, sites: list[SeedSite]) -> dict[str, str]:
    """Areas placing the seeded sites, plus a demo admin and a township viewer with random
    passwords (returned, never stored in clear). There is no default password."""
    from cloud_ingest.console import db as console_db
    from cloud_ingest.console.accounts import AccountStore
    from cloud_ingest.console.roles import Role
    from cloud_ingest.registry import areas

    rows = list(DEMO_AREAS) + [
        (f"{SITE_TOWNSHIP[s.site_id]}/{s.site_id}", s.name_zh, s.name_en) for s in sites
    ]
    csv_path = folder / "areas.csv"
    with csv_path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(areas.CSV_HEADER)
        writer.writerows(rows)
    console = console_db.open_store(db)
    try:
        with console.write() as conn:
            areas.import_areas_csv(conn, csv_path)
        store = AccountStore(console, time.time)
        passwords = {}
        for (username, area), role in ((DEMO_ADMIN, Role.ADMIN), (DEMO_VIEWER, Role.VIEWER)):
            password = secrets.token_urlsafe(15)  # 120 bits, new every run
            store.add_user(username, password, role, area)
            passwords[username] = password
    finally:
        console.close()
    return passwords


def _warmcard(*args: str) -> list[str]:
    return [sys.executable, "-m", "warmcard", *args]


@contextmanager
def _child(command: list[str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("ab") as out:
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def run_demo(run_dir: Path, sites: int, seed: int, duration: float | None) -> int:
    """Run everything until Ctrl-C (or `duration` seconds); returns the exit code."""
    if run_dir.exists():
        shutil.rmtree(run_dir)
    run_dir.mkdir(parents=True)
    logs = run_dir / "logs"
    logs.mkdir()

    now = datetime.now(ZoneInfo(DEMO_TZ))
    seed_sites = make_seed(sites, seed)
    csvs = write_seed_csvs(run_dir / "seed", seed_sites, compressed_day(now))

    stop = False

    def _on_signal(signum: int, frame: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGTERM, _on_signal)

    with ExitStack() as stack:
        broker = stack.enter_context(Mosquitto(run_dir / "mosquitto", port=_port(1883)))
        influx = stack.enter_context(InfluxD(run_dir / "influxd", port=_port(8086)))
        import_seed(run_dir / "registry.sqlite3", csvs)
        seed_care(run_dir / "registry.sqlite3", run_dir / "alerts.sqlite3", seed_sites)
        console_db = run_dir / "console.sqlite3"
        passwords = setup_console(console_db, run_dir / "seed", seed_sites)

        # The two cloud roles, as systemd runs them: one ingest worker and the console, on the
        # same registry, console database and dead letters.
        ports = {Ingest: _port(8081), Console: _port(8080)}
        # Links in notifications lead to this console.
        extra = f'live_resync_s = 10\nstatus_stale_s = 60\n\n[notify]\nconsole_url = "http://127.0.0.1:{ports[Console]}"'
        roles = [
            role(
                run_dir / role.name,
                port=ports[role],
                broker=broker,
                influx=influx,
                registry_path=run_dir / "registry.sqlite3",
                console_db=console_db,
                deadletter_path=run_dir / "deadletter.sqlite3",
                extra_toml=extra,
            )
            for role in (Ingest, Console)
        ]
        ingest, console = (stack.enter_context(r) for r in roles)
        url = console.url

        devices = [d for s in seed_sites for d in (s.entrance_device, s.canteen_device)]
        sim_args = ["simulate", "--broker-host", "127.0.0.1", "--broker-port", str(broker.port)]
        sim_args += ["--run-dir", str(run_dir / "kiosks"), "--seed", str(seed)]
        for device in devices:
            sim_args += ["--device", device]
        for person in (p for s in seed_sites for p in s.people if p.lives_alone_days):
            sim_args += ["--absent", person.card_uid]  # at home: due a visit
        sim_log = logs / "kiosks.log"
        sim = stack.enter_context(_child(_warmcard(*sim_args), sim_log))

        counts = f"{len(seed_sites)} 个院 sites, {len(devices)} 台终端 kiosks"
        print(f"Warmcard 演示已启动 demo running: {counts}")
        print(f"控制台 Console: {url}/login")
        for (username, _area), what in (
            (DEMO_ADMIN, "管理员（全州）admin, whole prefecture"),
            (DEMO_VIEWER, "查看员（喜洲镇）viewer, Xizhou township only"),
        ):
            print(f"  {what}: 用户名 username {username}  密码 password {passwords[username]}")
        print(f"日志 Logs: {logs}    按 Ctrl-C 停止 Press Ctrl-C to stop", flush=True)

        deadline = None if duration is None else time.monotonic() + duration
        while not stop and (deadline is None or time.monotonic() < deadline):
            for name, proc, log in (
                ("ingest", ingest.proc, ingest.log_file),
                ("console", console.proc, console.log_file),
                ("kiosks", sim, sim_log),
            ):
                if proc is None or proc.poll() is not None:
                    print(f"{name} 已退出 exited; see {log}", file=sys.stderr)
                    return 1
            time.sleep(0.5)
        print("正在停止 Stopping…", flush=True)
    print("已停止 Stopped.")
    return 0


def register(app: typer.Typer) -> None:
    """Add the demo command."""

    @app.command("demo")
    def demo(
        run_dir: Annotated[Path, typer.Option(help="Folder for servers, data and logs.")] = Path(
            "run/demo"
        ),
        sites: Annotated[int, typer.Option(min=1, max=6, help="Simulated sites.")] = 6,
        seed: Annotated[int, typer.Option(help="Seed of the simulated day.")] = 7,
        duration: Annotated[
            float | None, typer.Option(help="Stop after this many seconds (default: Ctrl-C).")
        ] = None,
    ) -> None:
        """Run the whole pipeline with simulated kiosks and a live page."""
        os.environ.setdefault("PYTHONUNBUFFERED", "1")
        raise typer.Exit(run_demo(run_dir, sites, seed, duration))
