"""The type of the `store_at` fixture (tests/conftest.py): where a store lives on the backend
under test, an SQLite file or the URL of the test's PostgreSQL database."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

StoreAt = Callable[[str], Path | str]
