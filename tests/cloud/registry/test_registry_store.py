# mypy: allow-untyped-defs
"""The registry store on each backend (SQLite file, PostgreSQL): the console's lists and edits,
card history, enrol mode, the version other processes watch, and one transaction per change."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from cloud_ingest.console.enrolment import EnrolMode
from cloud_ingest.errors import CardInUse
from cloud_ingest.pipeline.live import LiveEvent
from cloud_ingest.pipeline.provenance import Provenance
from cloud_ingest.pipeline.stored import StoredTap
from cloud_ingest.registry import queries as rc
from cloud_ingest.registry.store import Registry
from tests.support.ingest import write_registry
from warmcard.contract import Kind

T0 = 1_800_000_000_000_000
MINUTE = 60_000_000


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> int:
        return self.now


@pytest.fixture
def reg(tmp_path, store_at):
    ids = write_registry(tmp_path, "st", store_at("registry"))
    clock = Clock()
    registry = Registry(store_at("registry"), clock=clock)
    registry.ids = ids  # type: ignore[attr-defined]
    registry.test_clock = clock  # type: ignore[attr-defined]
    yield registry
    registry.close()


def test_lists_search_ignoring_case_with_literal_wildcards_and_visible_sites_only(reg):
    a, b = reg.ids["site_a"], reg.ids["site_b"]
    found = rc.search_people(reg, [a], q="p000")  # ids are upper case: found on both engines
    assert found.total == 6 and found.rows[0] == rc.PersonRow("P0001", "长者1", a, 1)
    assert rc.search_people(reg, [a], q="%").total == 0
    assert rc.search_people(reg, [a], q="长者7").total == 0  # P0007 lives at site B
    page = rc.search_people(reg, [a, b], per_page=4, page=3)
    assert page.total == 10 and page.rows == [
        rc.PersonRow("P0009", "长者9", b, 1),
        rc.PersonRow("P0010", "长者10", b, 1),
    ]
    assert rc.search_people(reg, [a, b], site=b).total == 4
    assert rc.search_people(reg, []).total == 0  # no visible site: nothing, not everything
    assert rc.get_person(reg, [a], "P0007") is None
    assert rc.get_person(reg, [b], "P0007") == rc.PersonRow("P0007", "长者7", b, 1)
    cards = rc.search_cards(reg, [a], q="04:a1:b2:03")
    assert cards.rows == [rc.CardRow("04A1B203", "P0003", a, True)]
    assert rc.search_cards(reg, [a], active=False).total == 0
    devices = rc.search_devices(reg, [a], q=reg.ids["gate_a"].upper(), now_us=T0)
    assert devices.rows == [rc.DeviceRow(reg.ids["gate_a"], a, "entrance", 10.0, None)]
    assert rc.get_device(reg, [a], reg.ids["gate_b"]) is None
    exported = [p.person_id for p in rc.iter_people_export(reg, [a, b], batch=3)]
    assert exported == [f"P{i:04d}" for i in range(1, 11)]


def test_a_card_moves_with_history_a_version_and_the_roster(reg):
    a, b = reg.ids["site_a"], reg.ids["site_b"]
    version = reg.stored_version()
    reg.test_clock.now = T0 + MINUTE
    previous = rc.assign_card(reg, "04A1B201", "P0002", editable_sites=[a])
    assert previous == rc.CardRow("04A1B201", "P0001", a, True)
    assert reg.stored_version() == reg.version == version + 1
    history = rc.card_history(reg, [a], "04A1B201")
    assert [(h.person_id, h.valid_to_us) for h in history] == [
        ("P0002", None),
        ("P0001", T0 + MINUTE),
    ]
    assert history[0].valid_from_us == T0 + MINUTE
    assert [c.card_uid for c in rc.person_cards(reg, "P0002")] == ["04A1B201", "04A1B202"]
    assert [h.card_uid for h in rc.person_history(reg, "P0001")] == ["04A1B201"]
    holders = {e.card_uid: e.person_id for e in reg.roster(a).entries}
    assert holders["04A1B201"] == "P0002"
    with pytest.raises(CardInUse):  # held at site B, which this editor may not edit
        rc.assign_card(reg, "04A1B207", "P0001", editable_sites=[a])
    assert reg.stored_version() == version + 1  # the refused edit changed nothing
    reg.test_clock.now = T0 + 2 * MINUTE
    rc.deactivate_card(reg, "04A1B201")
    assert "04A1B201" not in {e.card_uid for e in reg.roster(a).entries}
    person = rc.add_person(reg, "王奶奶", b)
    rc.update_person(reg, person, "王奶奶二", a)
    assert rc.get_person(reg, [a], person) == rc.PersonRow(person, "王奶奶二", a, 0)
    assert reg.people_homes([person, "P0001", "P9999"]) == {
        person: ("王奶奶二", a),
        "P0001": ("长者1", a),
    }
    assert reg.prune_history(T0 + MINUTE + 1) == 1  # P0001's ended assignment; open ones stay
    assert rc.card_history(reg, [a], "04A1B201")[0].person_id == "P0002"


def test_a_failed_change_writes_nothing_and_another_process_sees_a_change(reg, store_at):
    other = Registry(store_at("registry"))
    try:
        version = reg.stored_version()
        with pytest.raises(RuntimeError), reg.change() as db:
            db.execute(text("UPDATE sites SET name_zh = 'x' WHERE site_id = :s"), {"s": "none"})
            db.execute(text("DELETE FROM cards"))
            raise RuntimeError("refused half way")
        assert reg.stored_version() == version
        assert len(reg.roster(reg.ids["site_a"]).entries) == 6
        rc.add_person(reg, "新人", reg.ids["site_a"])
        assert other.version == version and other.refresh() and other.version == version + 1
        assert not other.refresh()  # nothing new since
    finally:
        other.close()


def test_people_homes_reads_more_ids_than_one_in_list_holds(reg):
    with reg.change() as db:
        db.execute(
            text("INSERT INTO people (person_id, display_name, site_id) VALUES (:p, :n, :s)"),
            [{"p": f"Q{i:05d}", "n": f"人{i}", "s": reg.ids["site_b"]} for i in range(1200)],
        )
    asked = [f"Q{i:05d}" for i in range(0, 1300)]  # 100 of them unknown
    homes = reg.people_homes(asked + asked[:10])
    assert len(homes) == 1200 and homes["Q01199"] == ("人1199", reg.ids["site_b"])


def unknown(device: str, n: int, ts_us: int) -> StoredTap:
    event = LiveEvent(device, n, ts_us, Kind.UNKNOWN_CARD, None, None)
    return StoredTap("site", event, f"0190f5a2-1b3c-7d4e-8f60-{n:012x}", f"04FFEE{n:02X}")


def test_enrol_mode_captures_unknown_cards_once_in_its_window(reg):
    gate = reg.ids["gate_a"]
    enrol = EnrolMode(reg)
    assert enrol.observe([unknown(gate, 1, T0)]) == 0  # no window open
    state = enrol.start(gate, 10, "mgr-a")
    assert state.active and state.until_us == T0 + 10 * MINUTE
    assert reg.device_config(gate).enrol_until_us == T0 + 10 * MINUTE
    late = unknown(gate, 2, T0 - MINUTE)  # a backlog tap from before the window
    taps = [unknown(gate, 3, T0 + 1), unknown(gate, 4, T0 + 2), late]
    assert enrol.observe(taps) == 2
    assert enrol.observe(taps[:1]) == 0  # redelivered: kept once
    state = enrol.state(gate)
    assert [c.card_uid for c in state.captures] == ["04FFEE04", "04FFEE03"]
    assert not any(c.known for c in state.captures)
    rc.assign_card(reg, "04FFEE03", "P0001", editable_sites=[reg.ids["site_a"]])
    capture = enrol.capture(state.captures[1].capture_id)
    assert capture is not None and capture.known and capture.card_uid == "04FFEE03"
    device = rc.get_device(reg, [reg.ids["site_a"]], gate, now_us=T0)
    assert device is not None and device.enrol_until_us == T0 + 10 * MINUTE
    assert not enrol.stop(gate).active
    assert reg.device_config(gate).enrol_until_us == 0


def test_provenance_reads_homes_and_card_history_of_the_version(reg):
    a = reg.ids["site_a"]
    provenance = Provenance(reg)
    before = provenance.current()
    assert before.homes["P0007"] == reg.ids["site_b"] and len(before.homes) == 10
    reg.test_clock.now = T0 + MINUTE
    rc.assign_card(reg, "04A1B201", "P0002", editable_sites=[a])
    after = provenance.current()  # a new version: read again
    assert after is not before
    spans = after.history["04A1B201"]
    assert spans[0] == (-1, T0 + MINUTE, "P0001")  # held since before its first record
    assert (spans[1][0], spans[1][2]) == (T0 + MINUTE, "P0002")
    assert provenance.current() is after  # same version: the cached snapshot
