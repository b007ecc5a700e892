"""The registry's JSON: people, cards, card history, kiosks and enrol mode; its query parameters."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import Path, Query
from pydantic import BaseModel, Field

from cloud_ingest.console.enrolment import EnrolState
from cloud_ingest.registry import queries as rc
from warmcard.timestamps import format_ts

PAGE_SIZE = 50
PageQ = Annotated[int, Query(ge=1, le=100_000)]
CaptureId = Annotated[int, Path(ge=1, le=2**63 - 1)]  # SQLite INTEGER range
PerPageQ = Annotated[int, Query(ge=1, le=rc.MAX_PER_PAGE)]
TextQ = Annotated[str, Query(max_length=100)]
SiteQ = Annotated[str | None, Query(max_length=63)]


def _ts(us: int | None) -> str | None:
    return format_ts(us) if us is not None else None


class PersonOut(BaseModel):
    person_id: str
    display_name: str
    site_id: str
    active_cards: int

    @classmethod
    def of(cls, p: rc.PersonRow) -> PersonOut:
        return cls(
            person_id=p.person_id,
            display_name=p.display_name,
            site_id=p.site_id,
            active_cards=p.active_cards,
        )


class CardOut(BaseModel):
    card_uid: str
    person_id: str
    site_id: str
    active: bool

    @classmethod
    def of(cls, c: rc.CardRow) -> CardOut:
        return cls(card_uid=c.card_uid, person_id=c.person_id, site_id=c.site_id, active=c.active)


class AssignmentOut(BaseModel):
    card_uid: str
    person_id: str
    valid_from: str | None = Field(description="UTC; null = before history was kept")
    valid_to: str | None = Field(description="UTC, exclusive; null = holds it now")

    @classmethod
    def of(cls, a: rc.Assignment) -> AssignmentOut:
        return cls(
            card_uid=a.card_uid,
            person_id=a.person_id,
            valid_from=_ts(a.valid_from_us),
            valid_to=_ts(a.valid_to_us),
        )


class DeviceOut(BaseModel):
    device_id: str
    site_id: str
    mode: str
    debounce_s: float
    enrol_until: str | None

    @classmethod
    def of(cls, d: rc.DeviceRow) -> DeviceOut:
        return cls(
            device_id=d.device_id,
            site_id=d.site_id,
            mode=d.mode,
            debounce_s=d.debounce_s,
            enrol_until=_ts(d.enrol_until_us),
        )


class PeoplePage(BaseModel):
    total: int
    page: int
    per_page: int
    items: list[PersonOut]


class CardsPage(BaseModel):
    total: int
    page: int
    per_page: int
    items: list[CardOut]


class DevicesPage(BaseModel):
    total: int
    page: int
    per_page: int
    items: list[DeviceOut]


class PersonDetail(BaseModel):
    person: PersonOut
    cards: list[CardOut]
    history: list[AssignmentOut]


class CardDetail(BaseModel):
    card: CardOut
    history: list[AssignmentOut]


class NewPerson(BaseModel):
    display_name: str = Field(min_length=1, max_length=64)
    site_id: str = Field(min_length=1, max_length=63)


class PersonPatch(BaseModel):
    display_name: str | None = Field(default=None, min_length=1, max_length=64)
    site_id: str | None = Field(default=None, min_length=1, max_length=63)


class CardAssign(BaseModel):
    card: str = Field(
        min_length=1,
        max_length=64,
        description="UID in hex (04:A1:B2:C3, 04a1b2c3) or the 10-digit number on the card",
        examples=["04:A1:B2:C3", "3283263748"],
    )
    person_id: str = Field(min_length=1, max_length=64)
    order: Literal["le", "be"] = Field(
        default="le", description="byte order of a 10-digit number (le for most readers)"
    )


class AssignResult(BaseModel):
    card: CardOut
    previous_person_id: str | None = Field(description="the earlier holder, if you may see them")


class CaptureOut(BaseModel):
    capture_id: int
    card_uid: str
    ts: str
    known: bool


class EnrolOut(BaseModel):
    device_id: str
    active: bool
    started_at: str | None
    until: str | None
    captures: list[CaptureOut]

    @classmethod
    def of(cls, state: EnrolState) -> EnrolOut:
        return cls(
            device_id=state.device_id,
            active=state.active,
            started_at=_ts(state.started_us),
            until=_ts(state.until_us),
            captures=[
                CaptureOut(
                    capture_id=c.capture_id,
                    card_uid=c.card_uid,
                    ts=format_ts(c.ts_us),
                    known=c.known,
                )
                for c in state.captures
            ],
        )


class EnrolStart(BaseModel):
    minutes: int = Field(default=10, ge=1, le=120)


class CaptureAssign(BaseModel):
    person_id: str = Field(min_length=1, max_length=64)


class UidOut(BaseModel):
    card_uid: str


class ErasureOut(BaseModel):
    """What an erasure changed, per store (counts only)."""

    person_id: str
    counts: dict[str, int | str]
