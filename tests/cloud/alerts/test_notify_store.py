"""The notification tables on both backends: targets by area and kind, each alert queued once per
target, claims that keep a delivery to one console, retries by the schedule, the log by area."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import text

from cloud_ingest.alerts.models import Kind
from cloud_ingest.alerts.notify.store import NotifyStore, Outgoing, Target
from tests.support.databases import StoreAt
from tests.support.notify import insert_alert

T0 = 1_700_000_000_000_000
S = 1_000_000
SITE_A = "dali/eryuan/xishan/site-a"
RETRY = [5 * S, 30 * S, 120 * S]


@pytest.fixture
def store(store_at: StoreAt) -> Iterator[NotifyStore]:
    s = NotifyStore(store_at("alerts"))
    yield s
    s.close()


def add(store: NotifyStore, area: str, channel: str = "webhook", **kw: object) -> Target:
    address = "wang@example.cn" if channel == "email" else f"http://robot.example/{area}"
    tid = store.add_target(
        area, channel, address, secret=None, kinds=kw.get("kinds", ()),  # type: ignore[arg-type]
        label="", created_by="admin", now_us=T0,
    )  # fmt: skip
    target = store.target(tid)
    assert target is not None
    return target


def queue_new(store: NotifyStore) -> int:
    """What the notifier does with new alerts (the wording comes when sent)."""
    cursor, alerts = store.new_alerts()
    targets = store.targets()
    out = [Outgoing(a.id, t) for a in alerts for t in targets if t.wants(a)]
    return store.enqueue(out, max([cursor, *(a.id for a in alerts)]), T0)


def test_targets_of_the_site_and_every_area_above_it_by_kind(store: NotifyStore) -> None:
    county = add(store, "dali/eryuan")
    site = add(store, SITE_A, "email")
    visits_only = add(store, "dali", kinds=[Kind.VISIT_DUE])
    add(store, "dali/er")  # another county
    sibling = add(store, "dali/eryuan/xishan/site-ab")  # a site whose name starts the same
    offline = insert_alert(store.db, "device_offline", "gate-a", SITE_A, site_id="site-a")
    due = insert_alert(store.db, "visit_due", "P0001", SITE_A, site_id="site-a")
    assert queue_new(store) == 5
    by_alert = {
        a: {t for _, t, _, _ in store.deliveries(a)} for a in (offline, due)
    }  # fmt: skip
    assert by_alert == {offline: {county.id, site.id}, due: {county.id, site.id, visits_only.id}}
    # Seen once: a second look (another console, or a restart) queues nothing again.
    assert queue_new(store) == 0
    assert store.targets(["dali/eryuan"]) == [county, site, sibling]
    assert store.targets([SITE_A]) == [site]
    assert {t.area_path for t in store.targets([""])} >= {"dali", "dali/er"}


def test_each_delivery_is_claimed_by_one_console_until_its_lease_ends(
    store: NotifyStore, store_at: StoreAt
) -> None:
    add(store, "dali")
    for i in range(3):
        insert_alert(store.db, "reader_fault", f"gate-{i}", SITE_A)
    queue_new(store)
    other = NotifyStore(store_at("alerts"))  # a second console on the same database
    try:
        mine = store.claim("console-1", T0, lease_us=60 * S)
        assert len(mine) == 3
        assert other.claim("console-2", T0 + S, lease_us=60 * S) == []
        # console-1 died without recording: after the lease, console-2 takes them over.
        taken = other.claim("console-2", T0 + 61 * S, lease_us=60 * S)
        assert sorted(d.id for d in taken) == sorted(d.id for d in mine)
    finally:
        other.close()


def test_retries_follow_the_schedule_then_fail_and_every_attempt_is_logged(
    store: NotifyStore,
) -> None:
    add(store, SITE_A)
    insert_alert(store.db, "device_offline", "gate-a", SITE_A)
    queue_new(store)
    now = T0
    statuses = []
    for _ in range(4):
        claimed = store.claim("c1", now, lease_us=60 * S)
        assert len(claimed) == 1
        assert store.claim("c1", now, lease_us=60 * S) == []  # held
        d = claimed[0]
        statuses.append(
            store.record(d, "c1", error="HTTP 500", started_us=now, finished_us=now, retry_us=RETRY)
        )
        if statuses[-1] == "pending":
            wait = RETRY[d.attempts]
            assert store.claim("c1", now + wait - 1, lease_us=60 * S) == []  # not yet due
            now += wait
    assert statuses == ["pending", "pending", "pending", "failed"]
    log = store.log([SITE_A])
    assert [r.attempt for r in log] == [4, 3, 2, 1]
    assert {r.status for r in log} == {"error"} and log[0].error == "HTTP 500"
    assert log[0].delivery_status == "failed"
    assert store.log(["dali/er"]) == []  # another area's admin sees none of it


def test_a_success_after_a_failure_and_the_queue_survives_a_restart(
    store: NotifyStore, store_at: StoreAt
) -> None:
    target = add(store, "dali")
    insert_alert(store.db, "device_offline", "gate-a", SITE_A)
    queue_new(store)
    d = store.claim("c1", T0, lease_us=60 * S)[0]
    store.record(d, "c1", error="timeout", started_us=T0, finished_us=T0, retry_us=RETRY)
    store.close()
    restarted = NotifyStore(store_at("alerts"))  # the console restarts
    try:
        d = restarted.claim("c1", T0 + 5 * S, lease_us=60 * S)[0]
        assert (d.attempts, d.address) == (1, target.address)
        status = restarted.record(
            d, "c1", error=None, started_us=T0 + 5 * S, finished_us=T0 + 6 * S, retry_us=RETRY
        )
        assert status == "sent"
        assert restarted.deliveries() == [(d.id, target.id, "sent", 2)]
        assert [r.status for r in restarted.log([""])] == ["sent", "error"]
        # Retention: settled deliveries and their attempts go after log_days.
        assert restarted.prune(T0 + 7 * S) == 1
        assert restarted.log([""]) == []
    finally:
        restarted.close()


def test_a_removed_target_fails_its_pending_deliveries_and_keeps_the_log(
    store: NotifyStore,
) -> None:
    target = add(store, "dali", "email")
    insert_alert(store.db, "device_offline", "gate-a", SITE_A)
    queue_new(store)
    d = store.claim("c1", T0, lease_us=60 * S)[0]
    store.record(d, "c1", error="451", started_us=T0, finished_us=T0, retry_us=RETRY)
    assert store.remove_target(target.id, T0 + S)
    assert store.target(target.id) is None
    assert store.deliveries() == [(d.id, target.id, "failed", 1)]
    assert [r.address for r in store.log([""])] == ["wang@example.cn"]
    assert not store.remove_target(target.id, T0 + S)


def test_an_erased_persons_alert_is_not_sent_and_nothing_of_them_is_kept(
    store: NotifyStore,
) -> None:
    target = add(store, "dali")
    alert = insert_alert(
        store.db, "visit_due", "P0001", SITE_A, person_id="P0001", detail_zh="长者1 独居"
    )
    queue_new(store)
    with store.db.read() as conn:  # the queue holds ids, never the person's words
        kept = conn.execute(text("SELECT subject, body FROM notify_deliveries")).all()
    assert [tuple(r) for r in kept] == [("", "")]
    d = store.claim("c1", T0, lease_us=60 * S)[0]
    assert d.alert is not None and d.alert.detail_zh == "长者1 独居"
    store.record(d, "c1", error="HTTP 500", started_us=T0, finished_us=T0, retry_us=RETRY)
    with store.db.write() as conn:  # what erasure does to the person's alerts
        conn.execute(text("DELETE FROM alerts WHERE id = :id"), {"id": alert})
    d = store.claim("c1", T0 + 5 * S, lease_us=60 * S)[0]
    assert d.alert_gone
    status = store.record(d, "c1", error="alert deleted", started_us=T0, finished_us=T0,
                          retry_us=RETRY)  # fmt: skip
    assert status == "failed"  # no more retries
    assert store.deliveries() == [(d.id, target.id, "failed", 2)]
