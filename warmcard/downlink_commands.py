"""Commands on a kiosk's command topic: which one a message is, and the erase command (v1.3).

`resend` (warmcard.contract.ResendCommand) and, since v1.3, `erase`: the cloud erased a person
(cloud_ingest/console/erasure.py) and asks each kiosk to pseudonymise the taps of that person
its outbox still holds, acknowledged or pending, with the same token the cloud used, so that a
later resend stores nothing identifying and lands on the cloud's pseudonymised points.
docs/protocol.md, "EraseCommand".
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, ValidationError

from warmcard.contract import ResendCommand, TapEvent, _check_version, _Wire
from warmcard.ids import CardUid, DeviceId, ErasedToken, PersonId, RequestId
from warmcard.rejections import InvalidPayload, Reason, schema_error
from warmcard.wirejson import decode_json

# A person holds a few cards over the years; more than this in one command is not a person.
MAX_ERASE_CARDS = 32


class EraseCommand(_Wire):
    """Downlink, QoS 1, not retained: pseudonymise every outbox event naming the person or a card.

    Sent until the kiosk lists `request_id` in its heartbeat's `erased` (the console keeps it
    pending per kiosk meanwhile), so a kiosk that was offline gets it when it comes back.
    """

    v: Literal[1] = 1
    command: Literal["erase"] = "erase"
    request_id: RequestId
    device_id: DeviceId
    person_id: PersonId
    card_uids: list[CardUid] = Field(default_factory=list, max_length=MAX_ERASE_CARDS)
    token: ErasedToken

    def to_bytes(self) -> bytes:
        return self.model_dump_json().encode()

    def pseudonymise(self, event: TapEvent) -> TapEvent | None:
        """The event with the person's ids replaced by the token, or None if it names neither.

        A tap of one of the cards without a person id (an unknown card, before enrolment) gets
        the token as its card and still no person id, as the contract wants for unknown_card.
        A card since held by someone else: their taps stay theirs (as in the cloud).
        """
        if event.person_id == self.person_id:
            person: str | None = self.token
        elif event.card_uid in self.card_uids and event.person_id is None:
            person = None
        else:
            return None
        return event.model_copy(update={"card_uid": self.token, "person_id": person})


Command = ResendCommand | EraseCommand


def parse_command(payload: bytes) -> Command:
    """Validate a command-topic message; InvalidPayload for anything else, an unknown command
    included (a newer cloud's: the kiosk logs and ignores it)."""
    data = decode_json(payload)
    _check_version(data)
    name = data.get("command")
    model: type[Command]
    if name == "resend":
        model = ResendCommand
    elif name == "erase":
        model = EraseCommand
    else:
        raise InvalidPayload(Reason.SCHEMA, f"command: unknown command {name!r:.40}")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise schema_error(exc) from None
