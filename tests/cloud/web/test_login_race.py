# mypy: allow-untyped-defs
"""Login limits and session counts under simultaneous requests, on a real uvicorn: the limit of
5 failures per username holds for 40 logins sent at once, to one console or spread over two,
and a user holds at most 10 sessions;
both with the console store on SQLite and on PostgreSQL (`store_at`)."""

from __future__ import annotations

import contextlib
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

import anyio
import httpx
from fastapi import FastAPI

from cloud_ingest.console.accounts import AccountStore
from cloud_ingest.console.roles import Role
from cloud_ingest.web.security import (
    PasswordChecks,
    auth_router,
    configure_auth,
)
from tests.support.console import (
    FAST_HASHER,
    PASSWORD,
    auth_config,
    console_db_with_areas,
    logged_in,
    login_csrf,
    serve,
    simultaneous_logins,
)
from tests.support.databases import StoreAt

SIMULTANEOUS = 40


@contextlib.contextmanager
def auth_apps(tmp_path: Path, console: Path | str, n: int) -> Iterator[list[str]]:
    """The login routes over the console store at `console`, served by `n` apps apart, as
    several console instances are; yields their base URLs."""
    path = console_db_with_areas(tmp_path, console)
    store = AccountStore(path, time.time, FAST_HASHER)
    store.add_user("li.wei", PASSWORD, Role.VIEWER, "dali/eryuan")
    store.close()
    with contextlib.ExitStack() as stack:
        urls = []
        for _ in range(n):
            app = FastAPI()
            config = auth_config(path)
            stack.callback(config.db.close)
            configure_auth(app, config)
            app.include_router(auth_router)
            urls.append(stack.enter_context(serve(app)))
        yield urls


@contextlib.contextmanager
def auth_app(tmp_path: Path, console: Path | str) -> Iterator[str]:
    """The login routes over the console store at `console`, served; yields the base URL."""
    with auth_apps(tmp_path, console, 1) as (url,):
        yield url


def test_simultaneous_logins_cannot_race_past_the_limit(tmp_path: Path, store_at: StoreAt) -> None:
    with auth_app(tmp_path, store_at("console")) as url:
        guesses = [("li.wei", f"guess-number-{i}", None) for i in range(SIMULTANEOUS)]
        counts = Counter(simultaneous_logins(url, guesses))
        print(
            f"\n{SIMULTANEOUS} simultaneous logins for one username: {dict(sorted(counts.items()))}"
        )
        # Exactly five passwords were tried; every other attempt was refused before its check.
        assert counts == {401: 5, 429: SIMULTANEOUS - 5}
        # And the right password is now refused too, until the window has passed.
        with httpx.Client(base_url=url, timeout=10) as client:
            right = client.post(
                "/login",
                json={"username": "li.wei", "password": PASSWORD},
                headers={"X-CSRF-Token": login_csrf(client)},
            )
        assert right.status_code == 429 and "尝试次数过多" in right.json()["detail"]


def test_spreading_guesses_over_two_consoles_gains_no_attempt(
    tmp_path: Path, store_at: StoreAt
) -> None:
    """Two console instances on one store (docs/architecture.md: the counts are in the
    database): 40 guesses at once, half to each, still get five passwords checked in all."""
    with auth_apps(tmp_path, store_at("console"), 2) as urls:
        guesses = [("li.wei", f"guess-number-{i}", None) for i in range(SIMULTANEOUS // 2)]
        with ThreadPoolExecutor(max_workers=2) as pool:
            halves = list(pool.map(lambda url: simultaneous_logins(url, guesses), urls))
        counts = Counter(halves[0] + halves[1])
        print(f"\n{SIMULTANEOUS} logins spread over two consoles: {dict(sorted(counts.items()))}")
        assert counts == {401: 5, 429: SIMULTANEOUS - 5}, halves
        for url in urls:  # the right password is refused at both until the window has passed
            with httpx.Client(base_url=url, timeout=10) as client:
                right = client.post(
                    "/login",
                    json={"username": "li.wei", "password": PASSWORD},
                    headers={"X-CSRF-Token": login_csrf(client)},
                )
            assert right.status_code == 429


def test_a_user_holds_at_most_ten_sessions(tmp_path: Path, store_at: StoreAt) -> None:
    with auth_app(tmp_path, store_at("console")) as url:
        clients = [logged_in(url, "li.wei") for _ in range(12)]
        alive = [c.get("/api/v1/me").status_code for c in clients]
        for c in clients:
            c.close()
    # The two oldest logins ended when the eleventh and twelfth began.
    assert alive == [401, 401] + [200] * 10


T = TypeVar("T")


def run_in_fresh_thread(main: Callable[[], Awaitable[T]]) -> T:
    """anyio.run in a thread of its own: an event loop another test left marked as running in
    this thread (a TestClient portal, say) must not refuse it."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(anyio.run, main).result(timeout=30)


def test_password_checks_run_two_at_once_queue_eight_and_refuse_the_rest() -> None:
    """The per-process bound on argon2 checks, on its own (what the load test measures)."""
    checks = PasswordChecks(slots=2, queue=8, wait_s=2.0)
    release = threading.Event()
    running: list[int] = []

    def check(i: int) -> int:
        running.append(i)
        release.wait(5)
        return i

    async def twelve_at_once() -> list[int | None]:
        results: list[int | None] = [None] * 12

        async def one(i: int) -> None:
            results[i] = await checks.run(check, i)

        async with anyio.create_task_group() as tg:
            for i in range(12):
                tg.start_soon(one, i)
                await anyio.sleep(0.01)
            await anyio.sleep(0.1)
            assert len(running) == 2  # two run, eight wait, the last two were sent away
            release.set()
        return results

    assert run_in_fresh_thread(twelve_at_once) == [*range(10), None, None]

    # Waiting is bounded in time too: behind a check that does not finish, a waiter gives up.
    release.clear()
    short = PasswordChecks(slots=1, queue=8, wait_s=0.3)

    async def behind_a_stuck_check() -> tuple[int | None, float]:
        async with anyio.create_task_group() as tg:
            tg.start_soon(short.run, check, 1)
            await anyio.sleep(0.05)
            t0 = time.monotonic()
            waited = await short.run(check, 2)
            took = time.monotonic() - t0
            release.set()
        return waited, took

    waited, took = run_in_fresh_thread(behind_a_stuck_check)
    assert waited is None and 0.25 < took < 1.0
