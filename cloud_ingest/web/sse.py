"""Server-Sent Events plumbing shared by the streams: wake on live-state changes, coalesce them,
keep idle connections open, and end when the client leaves or its session does."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

from fastapi import Request
from fastapi.responses import StreamingResponse

from cloud_ingest import db
from cloud_ingest.console.accounts import AccountStore
from cloud_ingest.pipeline.live import LiveState
from cloud_ingest.web.security import AuthConfig

COALESCE_S = 0.1  # several batches within this window become one push
KEEPALIVE_S = 15.0  # a comment line keeps proxies from closing an idle stream
HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def event(name: str, data: Any) -> str:
    """One SSE message."""
    return f"event: {name}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


def session_checker(config: AuthConfig, token: str | None) -> Callable[[], bool]:
    """A check that the session `token` is still live (logout, expiry, disabled user)."""

    def alive() -> bool:
        conn = db.connect(config.db_path)
        try:
            store = AccountStore(conn, config.clock, config.hasher, config.limits, config.sessions)
            return store.session(token) is not None
        finally:
            conn.close()

    return alive


async def changes(
    request: Request,
    live: LiveState,
    alive: Callable[[], bool],
    *,
    keepalive_s: float = KEEPALIVE_S,
) -> AsyncIterator[bool]:
    """Yield True after each (coalesced) live change, False when idle for `keepalive_s`."""
    loop = asyncio.get_running_loop()
    changed = asyncio.Event()

    def notify() -> None:  # called from the consumer's thread
        loop.call_soon_threadsafe(changed.set)

    live.add_listener(notify)
    try:
        while True:
            try:
                await asyncio.wait_for(changed.wait(), keepalive_s)
            except TimeoutError:
                if await request.is_disconnected() or not alive():
                    return
                yield False
                continue
            await asyncio.sleep(COALESCE_S)
            changed.clear()
            yield True
    finally:
        live.remove_listener(notify)


def stream_response(body: AsyncIterator[str]) -> StreamingResponse:
    return StreamingResponse(body, media_type="text/event-stream", headers=HEADERS)
