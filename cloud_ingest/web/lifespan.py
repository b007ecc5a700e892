"""The lifespan of an app that owns a service: start it on a worker thread, stop it likewise."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import anyio


def running(
    start: Callable[[], object], stop: Callable[[], object]
) -> Callable[[Any], AbstractAsyncContextManager[None]]:
    """A FastAPI lifespan: `start()` before the first request, `stop()` after the last; both
    block (they connect and join threads), so they run off the event loop."""

    @asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[None]:
        await anyio.to_thread.run_sync(start)
        try:
            yield
        finally:
            await anyio.to_thread.run_sync(stop)

    return lifespan
