# mypy: allow-untyped-defs
"""Enrol mode end to end: a real unknown_card tap through Mosquitto and ingest is offered in the
console, assigned, and the site's roster is republished retained with only ids and names."""

from __future__ import annotations

import json

import pytest

from tests.support.console import client_as, console_app, console_db_for
from tests.support.ingest import EventMaker, Publisher, make_settings, wait_for, write_registry
from tests.support.mqtt_watch import Watcher
from tests.support.stack import Stack
from warmcard.contract import Kind, Roster, roster_topic
from warmcard.timestamps import now_us


@pytest.fixture
def live(tmp_path, mosquitto, influxd, influx_db, topic_prefix):
    ids = write_registry(tmp_path, topic_prefix)
    settings = make_settings(tmp_path, mosquitto, influxd, influx_db, topic_prefix)
    service = Stack(settings)
    service.start()
    wait_for(service.consumer.subscribed.is_set)
    wait_for(service.devicelink.connected.is_set)
    app = console_app(service, console_db_for(tmp_path, ids))
    publisher = Publisher(mosquitto.port)
    watcher = Watcher(mosquitto.port, roster_topic(ids["gate_a"]), roster_topic(ids["gate_b"]))
    yield ids, service, app, publisher, watcher
    watcher.close()
    publisher.close()
    service.stop()


def rosters(watcher, device):
    return [Roster.model_validate_json(m.payload) for m in watcher.messages(roster_topic(device))]


def test_unknown_card_tapped_in_enrol_mode_is_assigned_and_roster_republished(live):
    ids, service, app, publisher, watcher = live
    gate_a, gate_b = ids["gate_a"], ids["gate_b"]
    assert wait_for(lambda: rosters(watcher, gate_a) and rosters(watcher, gate_b))
    b_before = len(watcher.messages(roster_topic(gate_b)))
    mgr = client_as(app, "mgr-a")
    viewer = client_as(app, "view-a")
    url = f"/api/v1/registry/devices/{gate_a}/enrol"
    assert viewer.post(url, json={"minutes": 5}).status_code == 403
    state = mgr.post(url, json={"minutes": 5}).json()
    assert state["active"] and state["captures"] == []

    old = EventMaker(gate_a, base_us=now_us() - 3_600_000_000)  # a backlog from an hour ago
    fresh = EventMaker(gate_a, base_us=now_us() + 1_000, seq=10)
    other = EventMaker(gate_b)
    publisher.publish(
        [
            old.make(Kind.UNKNOWN_CARD, None, card_uid="04BADBAD"),
            other.make(Kind.UNKNOWN_CARD, None, card_uid="04C0FFEE"),  # not in enrol mode
            fresh.make(Kind.CHECK_IN, "P0001"),
            fresh.make(Kind.UNKNOWN_CARD, None, card_uid="04CAFE01"),
        ]
    )
    wait_for(lambda: mgr.get(url).json()["captures"])
    wait_for(lambda: service.metrics.acked == 4)
    captures = mgr.get(url).json()["captures"]
    assert [(c["card_uid"], c["known"]) for c in captures] == [("04CAFE01", False)]

    # The enrol page offers it (polling script) and the capture is assigned to a person.
    page = mgr.get(f"/registry/devices/{gate_a}/enrol")
    assert page.status_code == 200 and "enrol.js" in page.text
    assert "script-src 'self'" in page.headers["content-security-policy"]
    capture_id = captures[0]["capture_id"]
    assign = f"/api/v1/registry/enrol/captures/{capture_id}/assign"
    assert client_as(app, "mgr-b").post(assign, json={"person_id": "P0003"}).status_code == 404
    r = mgr.post(assign, json={"person_id": "P0003"})
    assert r.status_code == 200, r.text
    assert r.json()["card"]["person_id"] == "P0003" and r.json()["previous_person_id"] is None
    assert mgr.get(url).json()["captures"][0]["known"] is True

    def republished():
        for roster in rosters(watcher, gate_a):
            if any(e.card_uid == "04CAFE01" for e in roster.entries):
                return roster
        return None

    roster = wait_for(republished, timeout=10)
    entry = next(e for e in roster.entries if e.card_uid == "04CAFE01")
    assert (entry.person_id, entry.display_name) == ("P0003", "长者3")
    last = watcher.messages(roster_topic(gate_a))[-1]
    assert set(json.loads(last.payload)["entries"][0]) == {"card_uid", "person_id", "display_name"}
    # Site B's roster did not change, so it was not republished.
    assert len(watcher.messages(roster_topic(gate_b))) == b_before
    # Late subscribers get it retained.
    late = Watcher(service.settings.mqtt.port, roster_topic(gate_a))
    try:
        assert late.wait_for(lambda: bool(late.messages()))
        first = late.messages()[0]
        assert first.retain and b"04CAFE01" in first.payload
    finally:
        late.close()

    # Stopping enrol mode: a further unknown tap is not captured.
    assert mgr.delete(url).json()["active"] is False
    publisher.publish([fresh.make(Kind.UNKNOWN_CARD, None, card_uid="04CAFE02")])
    wait_for(lambda: service.metrics.acked == 5)
    captured = service.registry.query("SELECT card_uid FROM enrol_captures")
    assert captured == [("04CAFE01",)]
