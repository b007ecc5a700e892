"""Self-healing's lease and ledger on each backend: consoles in several processes (here: several
stores, each with its own connections) elect one healer at a time."""

from __future__ import annotations

import threading

from cloud_ingest.alerts.store import AlertStore
from cloud_ingest.ops.heal_ledger import GapState, HealLedger
from tests.support.databases import StoreAt

S = 1_000_000
NOW = 1_800_000_000_000_000


def test_one_holder_wins_a_race_for_the_lease(store_at: StoreAt) -> None:
    stores = [AlertStore(store_at("alerts")) for _ in range(6)]
    try:
        ledgers = [HealLedger(s.db) for s in stores]
        for round_ in range(5):  # each round: the lease has expired, six consoles ask at once
            now = NOW + round_ * 100 * S
            won: list[str] = []
            start = threading.Barrier(len(ledgers))

            def ask(
                n: int,
                ledger: HealLedger,
                now: int = now,
                won: list[str] = won,
                start: threading.Barrier = start,
            ) -> None:
                start.wait()
                if ledger.take_lease(f"console-{n}", now, 60 * S):
                    won.append(f"console-{n}")

            threads = [threading.Thread(target=ask, args=(n, ld)) for n, ld in enumerate(ledgers)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            assert len(won) == 1, won
            assert ledgers[0].lease() == (won[0], now + 60 * S)
            assert ledgers[1].take_lease(won[0], now + S, 60 * S)  # the holder renews
    finally:
        for s in stores:
            s.close()


def test_gaps_and_conflicts_are_remembered(store_at: StoreAt) -> None:
    store = AlertStore(store_at("alerts"))
    try:
        ledger = HealLedger(store.db)
        gap = GapState("k-1", NOW, 3, 0, None, False)
        ledger.put_gap(gap)
        ledger.put_gap(GapState("k-2", NOW, 1, 2, NOW + S, True))
        ledger.put_gap(GapState("k-1", NOW, 2, 1, NOW + 2 * S, False))
        assert ledger.gaps()["k-1"] == GapState("k-1", NOW, 2, 1, NOW + 2 * S, False)
        assert ledger.gaps()["k-2"].alerted is True
        ledger.drop_gaps(["k-1", "k-9"])
        assert set(ledger.gaps()) == {"k-2"}
        assert ledger.new_conflicts("k-1", [(5, "ingest"), (6, "storage")], NOW) == [
            (5, "ingest"),
            (6, "storage"),
        ]
        assert ledger.new_conflicts("k-1", [(5, "ingest"), (7, "ingest")], NOW) == [(7, "ingest")]
    finally:
        store.close()
