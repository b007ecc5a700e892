"""The audit log's filters and rows as the API shows them."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import date
from typing import Annotated

from fastapi import HTTPException, Query
from pydantic import BaseModel

from cloud_ingest import i18n
from cloud_ingest.console.audit import AuditFilter, AuditRow
from warmcard import localtime

UserQ = Annotated[str, Query(max_length=32)]
WordQ = Annotated[str, Query(max_length=20)]
ObjectQ = Annotated[str, Query(max_length=100)]
DayQ = Annotated[str, Query(max_length=10, description="YYYY-MM-DD, local")]


@dataclass(frozen=True)
class AuditQuery:
    """The filter fields as typed (for the page's form and the CSV link) and the filter."""

    fields: dict[str, str]
    where: AuditFilter


def audit_filter(
    tz: str, user: str, action: str, kind: str, obj: str, start: str, end: str
) -> AuditFilter:
    """The filter for the given fields; days are local days, `end` included. 422 on a bad day."""

    def day(text: str, *, after: bool) -> int | None:
        if not text:
            return None
        try:
            bounds = localtime.day_bounds_us(date.fromisoformat(text), tz)
        except ValueError:
            raise HTTPException(422, "日期应为 YYYY-MM-DD; day must be YYYY-MM-DD") from None
        return bounds[1] if after else bounds[0]

    return AuditFilter(
        username=user,
        action=action,
        object_kind=kind,
        object_id=obj,
        since_us=day(start, after=False),
        until_us=day(end, after=True),
    )


class AuditRowOut(BaseModel):
    seq: int
    at: str  # local time, ISO 8601 with offset (for programs)
    at_local: str  # the same as a page shows it: 2026-11-30 11:39:09
    username: str
    action: str
    object_kind: str
    object_id: str
    detail: str
    client: str
    status: int
    hash: str

    @classmethod
    def of(cls, row: AuditRow, tz: str) -> AuditRowOut:
        at = localtime.to_local(row.at_us, tz).isoformat(timespec="seconds")
        at_local = i18n.format_ts(row.at_us, tz, seconds=True)
        # at_us and prev_hash are left out
        return cls(at=at, at_local=at_local, **dataclasses.asdict(row))


class AuditPage(BaseModel):
    total: int
    page: int
    per_page: int
    items: list[AuditRowOut]
