"""Erase commands wait per kiosk in the console store until the kiosk confirms them; a confirmed
row is scrubbed from the database's files (SQLite file and WAL; PostgreSQL table and index
files), not only deleted."""

from __future__ import annotations

from pathlib import Path

from cloud_ingest.console.kiosk_erasure import KioskErasures
from tests.support.databases import StoreAt, stored_bytes
from warmcard.command.servers.postgres import PostgreSQL

TOKEN = "erased-0123456789abcdef"
CARD = "04A1B202"


def test_sent_to_online_kiosks_again_until_confirmed(store_at: StoreAt) -> None:
    now = [1_000_000_000]
    orders = KioskErasures(store_at("console"), clock=lambda: now[0])
    try:
        assert orders.add("P2", [CARD], TOKEN, ["k-a", "k-b", "k-c"]) == 3
        first = orders.due({"k-a"})
        assert [c.device_id for c in first] == ["k-a"] and first[0].token == TOKEN
        assert orders.due({"k-a"}) == []  # sent a moment ago
        now[0] += 61_000_000
        assert [c.device_id for c in orders.due({"k-a", "k-b"})] == ["k-a", "k-b"]
        assert orders.confirmed("k-a", [first[0].request_id]) == 1
        assert orders.keep_only(["k-a", "k-b"]) == 1  # k-c left the registry
        assert orders.pending() == 1
        request = orders.due({"k-b"}, resend_s=0)[0].request_id
        assert orders.confirmed("k-b", [request, "er-other"]) == 1
        assert orders.pending() == 0
    finally:
        orders.close()


def _confirm_all(orders: KioskErasures) -> None:
    # Enough other rows that the erased one shares its pages with rows that stay.
    orders.add("P9", ["04FFFF09"], TOKEN, [f"k-{n:03d}" for n in range(150)])
    orders.add("P2", [CARD], TOKEN, ["k-a", "k-b"])
    for command in orders.due({"k-a", "k-b", "k-z"}):
        assert orders.confirmed(command.device_id, [command.request_id]) == 1


def test_confirmed_rows_leave_no_trace_in_the_sqlite_file(tmp_path: Path) -> None:
    """SQLite only: the bytes of the store's file and its WAL."""
    orders = KioskErasures(tmp_path / "console.sqlite3")
    try:
        _confirm_all(orders)
    finally:
        orders.close()
    assert orders.pending() == 150
    assert CARD.encode() not in b"".join(p.read_bytes() for p in tmp_path.iterdir())
    assert b"04FFFF09" in (tmp_path / "console.sqlite3").read_bytes()


def test_confirmed_rows_leave_no_trace_in_the_postgresql_files(
    postgres: PostgreSQL, pg_url: str
) -> None:
    """PostgreSQL only: the bytes of the table's and its index's files in the data folder."""
    orders = KioskErasures(pg_url)
    try:
        orders.add("P2", [CARD], TOKEN, ["k-z"])
        assert CARD.encode() in stored_bytes(orders.db, ["kiosk_erasures"], postgres)
        _confirm_all(orders)
        kept = stored_bytes(orders.db, ["kiosk_erasures"], postgres)
        assert orders.keep_only([]) == 150 and orders.pending() == 0
    finally:
        orders.close()
    assert CARD.encode() not in kept and b"04FFFF09" in kept
