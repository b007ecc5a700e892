"""Helpers for the alerts tests: a controlled microsecond clock, areas placing the sites, events."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from fastapi import APIRouter, FastAPI

from cloud_ingest.alerts.engine import AlertEngine
from cloud_ingest.alerts.settings import AlertSettings
from cloud_ingest.console import db as console_db
from cloud_ingest.console.accounts import AccountStore
from cloud_ingest.console.roles import Role
from cloud_ingest.pipeline.live import LiveEvent, LiveState
from cloud_ingest.registry import areas
from cloud_ingest.registry.store import Registry
from cloud_ingest.settings import IngestSettings
from cloud_ingest.web.security import AuthConfig, auth_router, configure_auth
from tests.support.console import FAST_HASHER
from tests.support.ingest import write_registry
from tests.support.stack import Stack
from warmcard.contract import Kind, MealPeriod

TZ = ZoneInfo("Asia/Shanghai")
US = 1_000_000
MIN = 60 * US
DAY = 86_400 * US


def local_us(y: int, m: int, d: int, hh: int, mm: int = 0, ss: int = 0) -> int:
    """Microseconds for a wall-clock time in Dali."""
    return int(datetime(y, m, d, hh, mm, ss, tzinfo=TZ).timestamp()) * US


class UsClock:
    """A wire clock (microseconds) the test moves by hand."""

    def __init__(self, t: int) -> None:
        self.t = t

    def __call__(self) -> int:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += int(seconds * US)


def write_areas(console_path: Path, ids: dict[str, str]) -> dict[str, str]:
    """Site A in dali/eryuan/xishan, site B in dali/er/haidong; returns site -> path."""
    csv = console_path.parent / "areas.csv"
    csv.write_text(
        "path,name_zh,name_en\n"
        "dali,大理州,Dali\n"
        "dali/eryuan,洱源县,Eryuan\n"
        "dali/eryuan/xishan,西山乡,Xishan\n"
        f"dali/eryuan/xishan/{ids['site_a']},西山小院,Xishan Courtyard\n"
        "dali/er,洱海片区,Erhai\n"
        "dali/er/haidong,海东镇,Haidong\n"
        f"dali/er/haidong/{ids['site_b']},海东小院,Haidong Courtyard\n",
        encoding="utf-8",
    )
    console = console_db.open_store(console_path)
    try:
        with console.write() as conn:
            areas.import_areas_csv(conn, csv)
            return areas.site_paths(conn)
    finally:
        console.close()


def make_engine(
    tmp: Path, ids: dict[str, str], clock: UsClock, **settings: object
) -> tuple[AlertEngine, LiveState, Registry]:
    """An engine on the test registry with live state (no InfluxDB) and the areas placed."""
    registry = Registry(tmp / "registry.sqlite3")
    live = LiveState(registry, None, clock=clock)
    console = tmp / "console.sqlite3"
    if not console.exists():
        write_areas(console, ids)
    engine = AlertEngine(
        AlertSettings(db_path=tmp / "alerts.sqlite3", **settings),  # type: ignore[arg-type]
        registry,
        live,
        None,
        console_db_path=console,
        clock=clock,
    )
    return engine, live, registry


def ev(
    device: str,
    seq: int,
    ts: int,
    kind: Kind,
    person: str | None,
    meal: MealPeriod | None = None,
) -> LiveEvent:
    return LiveEvent(device, seq, ts, kind, meal, person)


def alerts_console(
    tmp: Path,
    prefix: str,
    clock: UsClock,
    users: dict[str, tuple[Role, str]],
    routers: Sequence[APIRouter],
    password: str,
) -> tuple[FastAPI, Stack, dict[str, str]]:
    """An unstarted stack (no broker) with the areas placed, these users, and an app that serves
    `routers` behind the console login; the engine's site paths refreshed."""
    ids = write_registry(tmp, prefix)
    console = tmp / "console.sqlite3"
    write_areas(console, ids)
    accounts = AccountStore(console, lambda: clock.t / 1e6, FAST_HASHER)
    for name, (role, area) in users.items():
        accounts.add_user(name, password, role, area)
    accounts.close()
    settings = IngestSettings(
        registry_path=tmp / "registry.sqlite3",
        deadletter_path=tmp / "deadletter.sqlite3",
        console_db=console,
    )
    service = Stack(settings, clock=clock)
    app = FastAPI()
    configure_auth(
        app,
        AuthConfig(
            console=console, cookie_secure=False, clock=lambda: clock.t / 1e6, hasher=FAST_HASHER
        ),
    )
    for router in (auth_router, *routers):
        app.include_router(router)
    app.state.service = service.console
    service.alerts.refresh_site_paths()
    return app, service, ids
