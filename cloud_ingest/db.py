"""Open the cloud's SQLite files, every one the same way.

WAL lets pages read while an import, a login or a batch writes; foreign keys make a deleted user
take its grants and sessions with it; the busy timeout lets several processes on one host
(workers, console, CLI) share a file. `synchronous` is the one choice a store makes: FULL where a
row must survive a power cut the moment it is written (dead letters), NORMAL elsewhere.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Literal

BUSY_TIMEOUT_S = 10.0


def connect(
    path: Path | str,
    *,
    synchronous: Literal["NORMAL", "FULL"] = "NORMAL",
    autocommit: bool = False,
    shared: bool = False,
) -> sqlite3.Connection:
    """A connection with the house pragmas; the parent folder is created for a file path.

    `autocommit`: no implicit transactions (the caller writes BEGIN/COMMIT itself).
    `shared`: usable from several threads, for a store that serialises access with its own lock
    or a request whose dependencies and endpoint run on different threads.
    """
    if str(path) != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(
        str(path),
        timeout=BUSY_TIMEOUT_S,
        check_same_thread=not shared,
        isolation_level=None if autocommit else "DEFERRED",
    )
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA foreign_keys=ON")
    conn.execute(f"PRAGMA synchronous={synchronous}")
    return conn
