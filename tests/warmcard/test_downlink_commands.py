"""The erase command (v1.3): what a command-topic message is, and what erasing does to a tap."""

from __future__ import annotations

import pytest

from warmcard.contract import Kind, ResendCommand, TapEvent, events_topic, parse_event, parse_model
from warmcard.downlink_commands import EraseCommand, parse_command
from warmcard.rejections import InvalidPayload, Reason

TOKEN = "erased-0123456789abcdef"
ERASE = EraseCommand(
    request_id="er-1", device_id="k-001", person_id="P0002", card_uids=["04A1B202"], token=TOKEN
)


def tap(seq: int, card: str, person: str | None, kind: Kind = Kind.CHECK_IN) -> TapEvent:
    return TapEvent(
        event_id=f"019ad2f4-4b1e-7c3a-9f00-2b6c1d8e4a{seq:02d}",
        device_id="k-001",
        seq=seq,
        ts=f"2026-11-29T01:32:{seq:02d}.000000Z",
        card_uid=card,
        kind=kind,
        person_id=person,
    )


def test_commands_are_told_apart_and_unknown_ones_refused() -> None:
    resend = ResendCommand(request_id="rc-1", device_id="k-001", from_seq=1, to_seq=2)
    assert parse_command(resend.to_bytes()) == resend
    assert parse_command(ERASE.to_bytes()) == ERASE
    with pytest.raises(InvalidPayload) as unknown:
        parse_command(b'{"v":1,"command":"reboot","request_id":"x","device_id":"k-001"}')
    assert unknown.value.reason is Reason.SCHEMA
    with pytest.raises(InvalidPayload) as bad_token:
        parse_command(ERASE.to_bytes().replace(TOKEN.encode(), b"erased-P0002"))
    assert bad_token.value.reason is Reason.SCHEMA


def test_a_kiosk_before_v1_3_refuses_the_erase_command_cleanly() -> None:
    """What an old kiosk's uplink does with the command topic: parse it as a resend."""
    with pytest.raises(InvalidPayload) as old:
        parse_model(ResendCommand, ERASE.to_bytes())
    assert old.value.reason is Reason.UNKNOWN_FIELD  # logged, counted in bad_downlink, ignored


def test_pseudonymise_replaces_both_ids_with_the_token() -> None:
    mine = ERASE.pseudonymise(tap(1, "04A1B202", "P0002"))
    assert mine is not None and mine.card_uid == TOKEN and mine.person_id == TOKEN
    assert mine.erased
    # The rewritten tap is a valid wire event ingest accepts.
    assert parse_event(mine.to_bytes(), events_topic("k-001"), received_us=mine.ts_us) == mine
    unknown = ERASE.pseudonymise(tap(2, "04A1B202", None, Kind.UNKNOWN_CARD))
    assert unknown is not None and unknown.card_uid == TOKEN and unknown.person_id is None
    # The card later held by someone else: their taps stay theirs; other people untouched.
    assert ERASE.pseudonymise(tap(3, "04A1B202", "P0009")) is None
    assert ERASE.pseudonymise(tap(4, "04A1B203", "P0003")) is None


def test_an_erased_card_with_a_real_person_is_inconsistent() -> None:
    event = tap(1, "04A1B202", "P0002")
    payload = event.to_bytes().replace(b'"04A1B202"', f'"{TOKEN}"'.encode())
    with pytest.raises(InvalidPayload) as err:
        parse_event(payload, events_topic("k-001"), received_us=event.ts_us)
    assert err.value.reason is Reason.INCONSISTENT
