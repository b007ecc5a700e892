"""Taps an erased person's kiosk pseudonymised (v1.3) are stored like the cloud's own
pseudonymised points: no provenance mismatch (so no alert), no conflict with the original."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

from sqlalchemy import text

from cloud_ingest.pipeline.conflicts import SeenIndex
from cloud_ingest.pipeline.provenance import Snapshot
from tests.support.databases import StoreAt
from tests.support.ingest import EventMaker
from warmcard.contract import Kind, TapEvent
from warmcard.downlink_commands import EraseCommand

TOKEN = "erased-0123456789abcdef"
ERASE = EraseCommand(
    request_id="er-1", device_id="k-a", person_id="P2", card_uids=["04A1B202"], token=TOKEN
)


def erased(event: TapEvent) -> TapEvent:
    done = ERASE.pseudonymise(event)
    assert done is not None
    return done


def test_a_resent_erased_tap_is_not_a_conflict_but_a_changed_one_is(store_at: StoreAt) -> None:
    maker = EventMaker("k-a")
    original = maker.make(Kind.CHECK_IN, "P2")
    index = SeenIndex(store_at("conflicts"))
    try:
        assert index.admit([original], 1) == {}
        assert index.admit([erased(original)], 2) == {}  # same event, ids pseudonymised
        assert index.admit([original], 3) == {}  # the first digest is kept
        forged = erased(original).model_copy(update={"kind": Kind.CHECK_OUT})
        assert list(index.admit([forged], 4)) == [0]  # other content is still a conflict
        pending = erased(maker.make(Kind.CHECK_OUT, "P2"))  # never seen before erasure
        assert index.admit([pending], 5) == {}
    finally:
        index.close()


def test_provenance_lets_erased_taps_count_without_a_mismatch() -> None:
    snapshot = Snapshot(homes={}, history={}, roster_lag_us=0)  # P2 is gone from the registry
    tap = EventMaker("k-a").make(Kind.CHECK_IN, "P2")
    assert snapshot.check("s-a", tap, tap.ts_us, tap.ts_us) is not None  # person_unknown
    assert snapshot.check("s-a", erased(tap), tap.ts_us, tap.ts_us) is None


def test_an_index_from_before_v1_3_gains_the_shape_column(tmp_path: Path) -> None:
    """SQLite only: indexes from before v1.3 exist only as SQLite files."""
    old = tmp_path / "seen.sqlite3"
    with closing(sqlite3.connect(old)) as file, file:
        file.execute(
            "CREATE TABLE seen (id INTEGER PRIMARY KEY, device TEXT NOT NULL, seq INTEGER NOT "
            "NULL, event_id BLOB NOT NULL, digest BLOB NOT NULL, ts_us INTEGER NOT NULL, "
            "first_us INTEGER NOT NULL, UNIQUE (device, seq), UNIQUE (event_id))"
        )
    original = EventMaker("k-a").make(Kind.CHECK_IN, "P2")
    index = SeenIndex(old)
    try:
        assert index.admit([original], 1) == {}
        # A row from before v1.3 has no shape: an erased copy is matched by its id and time.
        with index.db.write() as conn:
            conn.execute(text("UPDATE seen SET shape = NULL"))
        assert index.admit([erased(original)], 2) == {}
    finally:
        index.close()
