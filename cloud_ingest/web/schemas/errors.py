"""The refusals every JSON route may answer, for the API document."""

from __future__ import annotations

from pydantic import BaseModel


class ErrorOut(BaseModel):
    """What every refusal carries: zh-CN first, English beside it."""

    detail: str


ERRORS: dict[int | str, dict[str, object]] = {
    400: {"model": ErrorOut, "description": "bad value (e.g. an unreadable card number)"},
    401: {"model": ErrorOut, "description": "not logged in"},
    403: {"model": ErrorOut, "description": "role too low, or CSRF token missing"},
    404: {"model": ErrorOut, "description": "no such id in your areas"},
    409: {"model": ErrorOut, "description": "card held in another area"},
}
UNAVAILABLE: dict[int | str, dict[str, object]] = {
    503: {"model": ErrorOut, "description": "InfluxDB unreachable; try again"}
}
