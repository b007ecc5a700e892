"""Writes the audit log (cloud_ingest.console.audit) for every request that touches personal data.

One table, `RULES`, says which routes are audited, as what action on what kind of object, and
which path parameter names the object. The middleware reads the matched route, its path
parameters, the logged-in user (the session dependency leaves it on the request) and the status
answered, after the route has run; the route may add counts with `note()`. The query string is
never read: a search is recorded as the fact and the number of results, not its text.
Requests without a session (401) are not recorded.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import anyio
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cloud_ingest.console.audit import Action, AuditEvent, AuditLog, ObjectKind

_DETAIL_KEY = "warmcard_audit"


@dataclass(frozen=True)
class Rule:
    action: Action
    kind: ObjectKind
    param: str | None = None  # the path parameter that names the object; None: `note(object=)`
    # Query parameters that are ids, not text a person typed (a report's area and month).
    id_params: tuple[str, ...] = ()


A, K = Action, ObjectKind
_REPORT = ("area", "month")
RULES: dict[tuple[str, str], Rule] = {
    # people
    ("GET", "/registry/people/{person_id}"): Rule(A.VIEW, K.PERSON, "person_id"),
    ("GET", "/api/v1/registry/people/{person_id}"): Rule(A.VIEW, K.PERSON, "person_id"),
    ("PATCH", "/api/v1/registry/people/{person_id}"): Rule(A.EDIT, K.PERSON, "person_id"),
    ("POST", "/registry/people/{person_id}"): Rule(A.EDIT, K.PERSON, "person_id"),
    ("POST", "/registry/people/{person_id}/cards"): Rule(A.EDIT, K.PERSON, "person_id"),
    ("POST", "/api/v1/registry/people/{person_id}/erase"): Rule(A.ERASE, K.PERSON, "person_id"),
    ("POST", "/api/v1/registry/people"): Rule(A.CREATE, K.PERSON),
    ("POST", "/registry/people"): Rule(A.CREATE, K.PERSON),
    ("POST", "/registry/people/import"): Rule(A.CREATE, K.PERSON),
    ("GET", "/api/v1/registry/people"): Rule(A.SEARCH, K.PERSON),
    ("GET", "/registry/people"): Rule(A.SEARCH, K.PERSON),
    ("GET", "/api/v1/registry/people.csv"): Rule(A.EXPORT, K.PERSON),
    ("GET", "/api/v1/visits/due"): Rule(A.SEARCH, K.PERSON),
    ("GET", "/alerts/visits"): Rule(A.SEARCH, K.PERSON),
    ("GET", "/alerts"): Rule(A.SEARCH, K.PERSON),  # names the people of person alerts
    ("POST", "/api/v1/visits"): Rule(A.CREATE, K.VISIT),
    # care: flags and contacts are the person's data; closures name no one but are audited
    ("POST", "/api/v1/people/{person_id}/flags"): Rule(A.EDIT, K.PERSON, "person_id"),
    ("POST", "/api/v1/people/{person_id}/contact"): Rule(A.EDIT, K.PERSON, "person_id"),
    ("GET", "/alerts/closures"): Rule(A.SEARCH, K.SITE),
    ("GET", "/api/v1/closures"): Rule(A.SEARCH, K.SITE),
    ("POST", "/api/v1/closures"): Rule(A.CREATE, K.SITE),
    ("POST", "/api/v1/closures/{closure_id}/delete"): Rule(A.EDIT, K.SITE, "closure_id"),
    # cards
    ("GET", "/api/v1/registry/cards"): Rule(A.SEARCH, K.CARD),
    ("GET", "/registry/cards"): Rule(A.SEARCH, K.CARD),
    ("GET", "/api/v1/registry/cards/{card_uid}"): Rule(A.VIEW, K.CARD, "card_uid"),
    ("POST", "/api/v1/registry/cards"): Rule(A.EDIT, K.CARD),
    ("POST", "/api/v1/registry/cards/{card_uid}/deactivate"): Rule(A.EDIT, K.CARD, "card_uid"),
    ("POST", "/registry/cards/{card_uid}/deactivate"): Rule(A.EDIT, K.CARD, "card_uid"),
    # enrolment
    ("POST", "/api/v1/registry/devices/{device_id}/enrol"): Rule(A.ENROL, K.DEVICE, "device_id"),
    ("DELETE", "/api/v1/registry/devices/{device_id}/enrol"): Rule(A.ENROL, K.DEVICE, "device_id"),
    ("POST", "/registry/devices/{device_id}/enrol"): Rule(A.ENROL, K.DEVICE, "device_id"),
    ("POST", "/registry/devices/{device_id}/enrol/stop"): Rule(A.ENROL, K.DEVICE, "device_id"),
    ("POST", "/api/v1/registry/enrol/captures/{capture_id}/assign"): Rule(
        A.ENROL, K.CARD, "capture_id"
    ),
    ("POST", "/registry/enrol/{capture_id}/assign"): Rule(A.ENROL, K.CARD, "capture_id"),
    # meals recorded by hand (补录): the person, and the site, period and day in the detail
    ("GET", "/sites/{site_id}/meals/manual"): Rule(A.VIEW, K.SITE, "site_id"),
    ("POST", "/sites/{site_id}/meals/manual"): Rule(A.CREATE, K.MEAL),
    ("POST", "/api/v1/sites/{site_id}/meals/manual"): Rule(A.CREATE, K.MEAL),
    # a county's subsidy rates: who, when, the old and the new rates
    ("GET", "/reports/subsidy"): Rule(A.VIEW, K.SUBSIDY),
    ("POST", "/reports/subsidy"): Rule(A.EDIT, K.SUBSIDY),
    ("PUT", "/api/v1/reports/subsidy"): Rule(A.EDIT, K.SUBSIDY),
    # sites: their pages name the people present
    ("GET", "/sites/{site_id}"): Rule(A.VIEW, K.SITE, "site_id"),
    ("GET", "/api/v1/sites/{site_id}"): Rule(A.VIEW, K.SITE, "site_id"),
    # reports and exports (per-elder figures)
    ("GET", "/reports"): Rule(A.VIEW, K.REPORT, id_params=_REPORT),
    ("GET", "/api/v1/reports/monthly"): Rule(A.VIEW, K.REPORT, id_params=_REPORT),
    ("GET", "/api/v1/reports/monthly.csv"): Rule(A.EXPORT, K.REPORT, id_params=_REPORT),
    ("GET", "/api/v1/reports/monthly.xlsx"): Rule(A.EXPORT, K.REPORT, id_params=_REPORT),
    ("GET", "/reports/meals"): Rule(A.VIEW, K.REPORT, id_params=_REPORT),
    ("GET", "/api/v1/reports/meals"): Rule(A.VIEW, K.REPORT, id_params=_REPORT),
    ("GET", "/api/v1/reports/meals.csv"): Rule(A.EXPORT, K.REPORT, id_params=_REPORT),
    ("GET", "/api/v1/reports/meals.xlsx"): Rule(A.EXPORT, K.REPORT, id_params=_REPORT),
    # console accounts (/admin/users): the target user and the role/area, never a password
    ("GET", "/admin/users"): Rule(A.SEARCH, K.ACCOUNT),
    ("POST", "/admin/users"): Rule(A.ACCOUNT, K.ACCOUNT),
    ("GET", "/admin/users/{username}"): Rule(A.VIEW, K.ACCOUNT, "username"),
    ("POST", "/admin/users/{username}/grant"): Rule(A.ACCOUNT, K.ACCOUNT, "username"),
    ("POST", "/admin/users/{username}/revoke"): Rule(A.ACCOUNT, K.ACCOUNT, "username"),
    ("POST", "/admin/users/{username}/disable"): Rule(A.ACCOUNT, K.ACCOUNT, "username"),
    ("POST", "/admin/users/{username}/enable"): Rule(A.ACCOUNT, K.ACCOUNT, "username"),
    ("POST", "/admin/users/{username}/password"): Rule(A.ACCOUNT, K.ACCOUNT, "username"),
    # notification targets (/alerts/notify): people's e-mail addresses; the audit row names the
    # area and channel, never the address
    ("GET", "/alerts/notify"): Rule(A.SEARCH, K.ACCOUNT),
    ("POST", "/alerts/notify/targets"): Rule(A.CREATE, K.ACCOUNT),
    ("POST", "/alerts/notify/targets/{target_id}/test"): Rule(A.EDIT, K.ACCOUNT, "target_id"),
    ("POST", "/alerts/notify/targets/{target_id}/delete"): Rule(A.EDIT, K.ACCOUNT, "target_id"),
    # the audit log itself
    ("GET", "/audit"): Rule(A.VIEW, K.AUDIT),
    ("GET", "/api/v1/audit"): Rule(A.VIEW, K.AUDIT),
    ("GET", "/api/v1/audit.csv"): Rule(A.EXPORT, K.AUDIT),
}


def note(request: Request, **detail: Any) -> None:
    """Add to the audit row of this request: counts (`results=12`), `object=` the id created."""
    bucket: dict[str, Any] = request.scope.setdefault("state", {}).setdefault(_DETAIL_KEY, {})
    bucket.update(detail)


class AuditTrail:
    """ASGI middleware: one audit row per audited request, written after the answer started."""

    def __init__(self, app: ASGIApp, log: AuditLog) -> None:
        self.app = app
        self.log = log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 0

        async def watching_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, watching_send)
        finally:
            event = _event(scope, status or 500)
            if event is not None:
                await anyio.to_thread.run_sync(self.log.append, event)


def _event(scope: Scope, status: int) -> AuditEvent | None:
    route = scope.get("route")
    path = getattr(route, "path", None)
    rule = RULES.get((scope["method"], path)) if path else None
    state: dict[str, Any] = scope.get("state") or {}
    session = state.get("warmcard_session")
    if rule is None or session is None:
        return None
    detail = dict(state.get(_DETAIL_KEY, {}))
    object_id = str(detail.pop("object", ""))
    if rule.param is not None:
        object_id = str(scope.get("path_params", {}).get(rule.param, object_id))
    if rule.id_params:
        query = Request(scope).query_params
        detail.update({name: query.get(name, "") for name in rule.id_params})
    client = scope.get("client")
    return AuditEvent(
        username=session.user.username,
        action=rule.action,
        object_kind=rule.kind,
        object_id=object_id,
        detail=detail,
        client=client[0] if client else "",
        status=status,
    )
