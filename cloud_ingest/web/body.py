"""The body of a POST that takes both a browser's form and JSON: string fields only."""

from __future__ import annotations

from fastapi import HTTPException, Request, status

from cloud_ingest.web.security import is_form


async def read_body(request: Request) -> dict[str, str]:
    """The form's fields, or the JSON object's string members (400 for anything else)."""
    if is_form(request):
        form = await request.form()
        return {k: v for k, v in form.items() if isinstance(v, str)}
    if not await request.body():
        return {}
    try:
        data = await request.json()
    except ValueError:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "JSON object expected") from None
    if not isinstance(data, dict):
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "JSON object expected")
    return {k: v for k, v in data.items() if isinstance(v, str)}
