"""What the alerts routes accept: the kind and state filters, the length of a visit's note."""

from __future__ import annotations

from fastapi import HTTPException

from cloud_ingest.alerts.models import Kind, State

MAX_NOTE = 1000


def parse_filters(kind: str | None, state: str | None) -> tuple[list[Kind], list[State]]:
    """The ?kind= and ?state= filters (empty: any); 422 naming the values allowed."""
    try:
        kinds = [Kind(kind)] if kind else []
        states = [State(state)] if state else []
    except ValueError:
        raise HTTPException(
            422,
            f"未知筛选 unknown filter: kind is one of {[k.value for k in Kind]}, "
            f"state one of {[s.value for s in State]}",
        ) from None
    return kinds, states
