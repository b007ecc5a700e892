"""GET /api/v1/deadletters: rejected messages and counts by reason.

Unauthenticated like the other routes for now; to be admin-only once the console's roles apply.
Payloads are untrusted bytes: returned as `text` only when printable, else as `hex`.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Query

from cloud_ingest.ops.payload_view import payload_json
from cloud_ingest.web.deps import ServiceDep
from warmcard.rejections import Reason

router = APIRouter()


@router.get("/api/v1/deadletters")
def list_deadletters(
    service: ServiceDep,
    reason: Reason | None = None,
    limit: int = Query(100, ge=1, le=1000),
) -> dict[str, Any]:
    letters = []
    for d in service.deadletters.list(limit=limit, reason=reason):
        doc = d.as_json()
        doc["payload"] = payload_json(d.payload)
        letters.append(doc)
    return {"counts": service.deadletters.counts(), "letters": letters}


@router.get("/api/v1/deadletters/{letter_id}")
def get_deadletter(service: ServiceDep, letter_id: int) -> dict[str, Any]:
    letter = service.deadletters.get(letter_id)
    if letter is None:
        raise HTTPException(404, f"没有这条死信 No dead letter {letter_id}")
    doc = letter.as_json()
    doc["payload"] = payload_json(letter.payload)
    return doc
