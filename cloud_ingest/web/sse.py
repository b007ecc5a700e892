"""Server-Sent Events plumbing shared by the streams: wake on live-state changes, coalesce them,
keep idle connections open, and end when the client leaves, its session ends or its user's grants
change (checked every RECHECK_S seconds, busy or idle)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

from fastapi import Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse

from cloud_ingest.console.roles import User
from cloud_ingest.pipeline.live import LiveState
from cloud_ingest.web.security import AuthConfig, get_account_store

COALESCE_S = 0.1  # several batches within this window become one push
KEEPALIVE_S = 15.0  # a comment line keeps proxies from closing an idle stream
RECHECK_S = 5.0  # how long a stream may outlive its session or a change of its user's grants
HEADERS = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}


def event(name: str, data: Any) -> str:
    """One SSE message."""
    return f"event: {name}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


def session_checker(config: AuthConfig, token: str | None, user: User) -> Callable[[], bool]:
    """A check that the session `token` is still live (logout, expiry, disabled user) and that
    `user`'s grants are those the stream was opened with (a stream filters by them)."""

    def alive() -> bool:
        session = get_account_store(config).session(token)
        return session is not None and session.user.grants == user.grants

    return alive


async def changes(
    request: Request,
    live: LiveState,
    alive: Callable[[], bool],
    *,
    keepalive_s: float = KEEPALIVE_S,
    recheck_s: float = RECHECK_S,
) -> AsyncIterator[bool]:
    """Yield True after each (coalesced) live change, False when idle for `keepalive_s`; end when
    the client leaves or `alive()` fails, which is asked every `recheck_s` whatever the traffic.

    A busy stream never idles, so a check made only when idle never came: streams of a disabled
    user went on sending for as long as taps kept arriving.
    """
    loop = asyncio.get_running_loop()
    changed = asyncio.Event()

    def notify() -> None:  # called from the consumer's thread
        loop.call_soon_threadsafe(changed.set)

    live.add_listener(notify)
    try:
        next_check = last_sent = loop.time()
        while True:
            now = loop.time()
            if now >= next_check:
                if await request.is_disconnected() or not await run_in_threadpool(alive):
                    return
                next_check = now + recheck_s
            try:
                await asyncio.wait_for(
                    changed.wait(), min(next_check, last_sent + keepalive_s) - now
                )
            except TimeoutError:
                if loop.time() >= last_sent + keepalive_s:
                    last_sent = loop.time()
                    yield False
                continue
            await asyncio.sleep(COALESCE_S)
            changed.clear()
            last_sent = loop.time()
            yield True
    finally:
        live.remove_listener(notify)


def stream_response(body: AsyncIterator[str]) -> StreamingResponse:
    return StreamingResponse(body, media_type="text/event-stream", headers=HEADERS)
