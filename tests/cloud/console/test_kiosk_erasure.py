"""Erase commands wait per kiosk in the console database until the kiosk confirms them."""

from __future__ import annotations

from pathlib import Path

from cloud_ingest.console.kiosk_erasure import KioskErasures

TOKEN = "erased-0123456789abcdef"


def test_sent_to_online_kiosks_again_until_confirmed(tmp_path: Path) -> None:
    now = [1_000_000_000]
    path = tmp_path / "console.db"
    orders = KioskErasures(path, clock=lambda: now[0])
    try:
        assert orders.add("P2", ["04A1B202"], TOKEN, ["k-a", "k-b", "k-c"]) == 3
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
    assert b"04A1B202" not in b"".join(p.read_bytes() for p in tmp_path.iterdir())
