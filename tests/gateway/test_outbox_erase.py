"""An erase command reaches the outbox: every tap of the person, acknowledged or pending, is
rewritten with the cloud's token, and the card and id leave the SQLite file (WAL included)."""

from __future__ import annotations

from pathlib import Path

from firmware_gateway.clock import ManualClock
from firmware_gateway.outbox import Outbox
from firmware_gateway.uplink import Uplink
from warmcard.contract import Kind, ResendCommand, command_topic
from warmcard.downlink_commands import EraseCommand
from warmcard.settings import MqttSettings

CARD, PERSON, OTHER = "04A1B202", "P0002", "04A1B203"
TOKEN = "erased-0123456789abcdef"


def command(device: str = "k-001", request_id: str = "er-1") -> EraseCommand:
    return EraseCommand(
        request_id=request_id, device_id=device, person_id=PERSON, card_uids=[CARD], token=TOKEN
    )


def filled(tmp_path: Path) -> Outbox:
    box = Outbox(tmp_path / "outbox.sqlite3", "k-001", ManualClock(), min_free_bytes=0)
    box.record(CARD, Kind.UNKNOWN_CARD)  # before the card was enrolled
    box.record(CARD, Kind.CHECK_IN, person_id=PERSON)
    box.record(OTHER, Kind.CHECK_IN, person_id="P0003")
    box.mark_acked([1, 2, 3])
    box.record(CARD, Kind.CHECK_OUT, person_id=PERSON)  # still pending
    return box


def test_every_tap_of_the_person_is_pseudonymised_and_leaves_the_file(tmp_path: Path) -> None:
    box = filled(tmp_path)
    assert box.erase(command()) == 3
    events = box.events_since(0)
    assert [(e.card_uid, e.person_id) for e in events] == [
        (TOKEN, None),
        (TOKEN, TOKEN),
        (OTHER, "P0003"),
        (TOKEN, TOKEN),
    ]
    assert [e.seq for e in box.pending()] == [4]  # statuses are unchanged
    assert box.resend(1, 4) == 3 and all(e.erased for e in box.pending()[:2])
    assert box.erase(command()) == 0  # again: nothing left to change
    raw = b"".join(p.read_bytes() for p in tmp_path.iterdir())
    assert CARD.encode() not in raw and PERSON.encode() not in raw
    assert OTHER.encode() in raw
    box.close()


def test_the_uplink_applies_erase_and_lists_it_in_the_heartbeat(tmp_path: Path) -> None:
    box = filled(tmp_path)
    forgotten: list[EraseCommand] = []
    uplink = Uplink("k-001", MqttSettings(), box, box.clock, on_erase=forgotten.append)
    topic = command_topic("k-001")
    uplink._on_downlink(topic, command(device="k-002").to_bytes())  # another kiosk's
    assert uplink.stats.bad_downlink == 1 and not forgotten
    uplink._on_downlink(topic, command().to_bytes())
    uplink._on_downlink(topic, command().to_bytes())  # a QoS 1 duplicate: harmless
    assert forgotten == [command(), command()]
    assert uplink.stats.erased_events == 3
    assert uplink.build_status().erased == ["er-1"]
    # A command of a later version is ignored like any invalid message, without harm.
    uplink._on_downlink(topic, b'{"v":1,"command":"reboot","request_id":"x","device_id":"k-001"}')
    assert uplink.stats.bad_downlink == 2
    resend = ResendCommand(request_id="rc-1", device_id="k-001", from_seq=1, to_seq=3)
    uplink._on_downlink(topic, resend.to_bytes())
    assert uplink.stats.resend_events == 3
    box.close()
