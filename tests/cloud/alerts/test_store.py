"""The alerts store on each backend (SQLite file, PostgreSQL): one open alert per (kind,
subject), area scoping by whole path segments, flags, last seen, visits and retention."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from cloud_ingest.alerts.models import Finding, Kind, LastSeen, State
from cloud_ingest.alerts.store import AlertStore
from cloud_ingest.errors import AlertError
from tests.support.databases import StoreAt

T0 = 1_800_000_000_000_000
S = 1_000_000


@pytest.fixture
def store(store_at: StoreAt) -> Iterator[AlertStore]:
    s = AlertStore(store_at("alerts"))
    yield s
    s.close()


def offline(device: str, at: int, site: str = "s1") -> Finding:
    return Finding(
        Kind.DEVICE_OFFLINE, device, at, "离线", "offline", site_id=site, device_id=device
    )


def test_raising_again_updates_the_one_open_alert(store: AlertStore) -> None:
    first = store.raise_alert(offline("k-1", T0), "dali/er")
    again = store.raise_many([(offline("k-1", T0 - S), "dali/er"), (offline("k-2", T0), "dali")])
    assert again[0] == first and again[1] != first
    alert = store.get(first)
    assert alert is not None and alert.count == 2 and alert.last_seen_at == T0  # never back
    assert store.acknowledge(first, "ann", T0 + S) and not store.acknowledge(first, "ann", T0)
    assert store.get(first).state == State.ACKNOWLEDGED  # type: ignore[union-attr]
    assert store.close_alert(first, "ann", T0 + 2 * S) and not store.close_alert(first, "x", 0)
    reopened = store.raise_alert(offline("k-1", T0 + 3 * S), "dali/er")
    assert reopened != first  # a closed alert stays closed: the next one is new
    assert store.clear_auto(Kind.DEVICE_OFFLINE, ["k-1", "k-9"], T0 + 4 * S) == 1
    assert store.open_subjects(Kind.DEVICE_OFFLINE) == {"k-2"}


def test_areas_match_whole_segments(store: AlertStore) -> None:
    store.raise_many(
        [
            (offline("k-er", T0, "s1"), "dali/er"),
            (offline("k-erh", T0 + 1, "s2"), "dali/erhai"),  # not inside dali/er
            (offline("k-low", T0 + 2, "s3"), "dali/er/haidong"),
            (offline("k-none", T0 + 3, "s4"), ""),
        ]
    )
    subjects = lambda paths, **kw: [a.subject for a in store.find(paths, **kw)]  # noqa: E731
    assert subjects(["dali/er"]) == ["k-low", "k-er"]  # newest activity first
    assert subjects([""]) == ["k-none", "k-low", "k-erh", "k-er"]
    assert subjects([]) == []
    assert subjects(["dali/erhai", "dali/er/haidong"]) == ["k-low", "k-erh"]
    assert subjects([""], site_id="s2") == ["k-erh"]
    assert subjects([""], kinds=[Kind.VISIT_DUE]) == []
    assert subjects([""], states=[State.OPEN], limit=1) == ["k-none"]
    assert store.counts(["dali"]) == {Kind.DEVICE_OFFLINE.value: 3}


def test_flags_last_seen_and_meta(store: AlertStore) -> None:
    assert store.set_flags([("P1", "lives_alone", True), ("P2", "lives_alone", True)], T0) == (2, 0)
    assert store.set_flags([("P1", "lives_alone", True), ("P2", "lives_alone", False)], T0 + S) == (
        0,
        1,
    )
    assert store.flags() == [("P1", "lives_alone", T0)]  # flagged_at kept from the first time
    store.upsert_last_seen([LastSeen("P1", T0, "s1", "k-1", "check_in")])
    store.upsert_last_seen(
        [LastSeen("P1", T0 - S, "s2", "k-2", "meal"), LastSeen("P2", T0, "s2", "k-2", "meal")]
    )
    seen = store.last_seen()
    assert seen["P1"].site_id == "s1" and seen["P2"].kind == "meal"  # older never moves it back
    assert set(store.last_seen(["P2", "P9"])) == {"P2"}
    assert set(store.last_seen([f"P{n}" for n in range(1200)])) == {"P1", "P2"}  # chunked
    assert store.meta("k") is None
    store.set_meta("k", 5)
    store.set_meta("k", 7)
    assert store.meta("k") == 7


def test_visits_close_the_due_alert_and_retention_prunes(store: AlertStore) -> None:
    due = Finding(Kind.VISIT_DUE, "P1", T0, "到期", "due", person_id="P1")
    alert_id = store.raise_alert(due, "dali/er")
    visit = store.record_visit("P1", "dali/er", T0 + S, "ann", "好", alert_id)
    assert store.get(alert_id).state == State.CLOSED  # type: ignore[union-attr]
    store.record_visit("P2", "dali/erhai", T0 + 2 * S, "bob", "", None)
    assert [v.id for v in store.visits_between("dali/er", T0, T0 + 3 * S)] == [visit]
    assert store.last_visits() == {"P1": T0 + S, "P2": T0 + 2 * S}
    assert len(store.visits_in("", "2027-01", "Asia/Shanghai")) == 2  # T0 is 2027-01-15
    assert store.visits_in("dali", "2027-02", "Asia/Shanghai") == []
    with pytest.raises(AlertError, match="YYYY-MM"):
        store.visits_in("", "Jan 2027")
    open_id = store.raise_alert(offline("k-1", T0), "")
    assert store.prune(T0 + 10 * S, T0 + 2 * S) == (1, 1)  # the closed alert; P1's visit
    assert store.get(alert_id) is None and store.get(open_id) is not None
    assert [v.person_id for v in store.visits_between("", 0, T0 * 2)] == ["P2"]
