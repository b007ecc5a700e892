"""The registry's JSON: people, cards, card history, kiosks and enrol mode; its query parameters."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import Path, Query
from pydantic import BaseModel, Field

from cloud_ingest import i18n
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


def _local(us: int | None, tz: str | None) -> str | None:
    """The site's local time as a page shows it ('2026-11-30 11:39'); None stays None."""
    return i18n.format_ts(us, tz) if us is not None else None


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
    valid_from_local: str | None = Field(description="valid_from in the site's local time")
    valid_to_local: str | None = Field(description="valid_to in the site's local time")

    @classmethod
    def of(cls, a: rc.Assignment, tz: str | None = None) -> AssignmentOut:
        return cls(
            card_uid=a.card_uid,
            person_id=a.person_id,
            valid_from=_ts(a.valid_from_us),
            valid_to=_ts(a.valid_to_us),
            valid_from_local=_local(a.valid_from_us, tz),
            valid_to_local=_local(a.valid_to_us, tz),
        )


class DeviceOut(BaseModel):
    device_id: str
    site_id: str
    mode: str
    debounce_s: float
    enrol_until: str | None
    enrol_until_local: str | None = Field(description="enrol_until in the site's local time")

    @classmethod
    def of(cls, d: rc.DeviceRow, tz: str | None = None) -> DeviceOut:
        return cls(
            device_id=d.device_id,
            site_id=d.site_id,
            mode=d.mode,
            debounce_s=d.debounce_s,
            enrol_until=_ts(d.enrol_until_us),
            enrol_until_local=_local(d.enrol_until_us, tz),
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
    ts_local: str = Field(description="ts in the site's local time, as the page shows it")
    known: bool


class EnrolOut(BaseModel):
    device_id: str
    active: bool
    started_at: str | None
    until: str | None
    started_at_local: str | None = Field(description="started_at in the site's local time")
    until_local: str | None = Field(description="until in the site's local time")
    captures: list[CaptureOut]

    @classmethod
    def of(cls, state: EnrolState, tz: str | None = None) -> EnrolOut:
        return cls(
            device_id=state.device_id,
            active=state.active,
            started_at=_ts(state.started_us),
            until=_ts(state.until_us),
            started_at_local=_local(state.started_us, tz),
            until_local=_local(state.until_us, tz),
            captures=[
                CaptureOut(
                    capture_id=c.capture_id,
                    card_uid=c.card_uid,
                    ts=format_ts(c.ts_us),
                    ts_local=i18n.format_ts(c.ts_us, tz),
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
