"""The notifications page (/alerts/notify): a manager or admin of an area sets where its alerts
are pushed (group-robot webhooks, e-mail), sends a test, and reads the delivery log.

GET  /alerts/notify                            targets and the log of the user's areas
POST /alerts/notify/targets                    add a target (form: area, channel, address, ...)
POST /alerts/notify/targets/{target_id}/test   queue a test message, sent at once
POST /alerts/notify/targets/{target_id}/delete remove a target (its log stays)

Managers and admins only (viewers: 403); a target outside the user's areas answers 404. The
page names people's e-mail addresses, so every request is audited (audit_trail.RULES).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, HTTPException, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from cloud_ingest import i18n
from cloud_ingest.alerts.models import KIND_NAMES, Kind
from cloud_ingest.alerts.notify import Notifier
from cloud_ingest.alerts.notify.store import Target
from cloud_ingest.alerts.notify.targets import CHANNELS, check
from cloud_ingest.console.roles import Action, Role, User, can
from cloud_ingest.errors import AreaError, NotifyTargetError
from cloud_ingest.registry import areas
from cloud_ingest.web import render
from cloud_ingest.web.audit_trail import note
from cloud_ingest.web.deps import PageDep, ServiceDep
from cloud_ingest.web.render import PageContext
from cloud_ingest.web.security import (
    FORBIDDEN,
    AccountStoreDep,
    CurrentUser,
    csrf_protect,
    require_role,
)
from cloud_ingest.web.visibility import not_found

router = APIRouter(
    dependencies=[Depends(require_role(Role.MANAGER)), Depends(csrf_protect)],
    include_in_schema=False,
    tags=["alerts"],
)
PAGE = "/alerts/notify"
LOG_ROWS = 200


def get_notifier(service: ServiceDep) -> Notifier:
    return service.notifier


NotifierDep = Annotated[Notifier, Depends(get_notifier)]


def managed_areas(user: User) -> list[str]:
    """The areas whose targets and log the user may see and change (manager or above)."""
    return [g.area for g in user.grants if g.role >= Role.MANAGER and not user.disabled]


def _area_choices(service: ServiceDep, user: User, lang: str) -> list[tuple[str, str]]:
    """(path, label) of every area and site the user may set targets on, by path."""
    placed = service.alerts.refresh_site_paths()
    names = render.site_names(service.registry, lang)
    found = {g.area for g in user.grants}
    for path in placed.values():
        found.update(areas.ancestors(path))
    site_at = {path: site for site, path in placed.items()}
    return [
        (p, (p or "/") + (f" · {names.get(site_at[p], '')}" if p in site_at else ""))
        for p in sorted(found)
        if can(user, Action.MANAGE_NOTIFY, p)
    ]


def _kind_label(kinds: frozenset[Kind], lang: str) -> str:
    if not kinds:
        return i18n.t("all_kinds", lang)
    return "、".join(render.pick(KIND_NAMES[k], lang) for k in sorted(kinds))


@router.get(PAGE, response_class=HTMLResponse)
def notify_page(
    ctx: PageDep, service: ServiceDep, notifier: NotifierDep, tested: bool = False
) -> HTMLResponse:
    """通知 Notifications: the targets of the user's areas, the add form and the delivery log."""
    user, lang = ctx.session.user, ctx.lang
    mine = managed_areas(user)
    targets = notifier.store.targets(mine)
    log = notifier.store.log(mine, LOG_ROWS)
    note(ctx.request, results=len(targets), log=len(log))
    return ctx.render(
        "notify.html",
        active="alerts",
        title_key="nav_notify",
        targets=[
            {"t": t, "kinds": _kind_label(t.kinds, lang), "added": i18n.format_ts(t.created_at)}
            for t in targets
        ],
        log=[
            {
                "r": r,
                "when": i18n.format_ts(r.started_at, seconds=True),
                "next": i18n.format_ts(r.next_at, seconds=True),
                "status": i18n.t(f"delivery_{r.status}", lang),
                "now": i18n.t(f"delivery_{r.delivery_status}", lang),
            }
            for r in log
        ],
        area_choices=_area_choices(service, user, lang),
        kinds=[(k.value, render.pick(KIND_NAMES[k], lang)) for k in Kind],
        channels=CHANNELS,
        smtp_ready=notifier.email.configured,
        tested=tested,
    )


def _refused(ctx: PageContext, message: str, code: int) -> HTMLResponse:
    return ctx.not_done(message, code, active="alerts", back=PAGE)


@router.post(PAGE + "/targets", response_class=HTMLResponse)
def add_target(
    ctx: PageDep,
    user: CurrentUser,
    notifier: NotifierDep,
    area: Annotated[str, Form(max_length=300)],
    channel: Annotated[str, Form(max_length=16)],
    address: Annotated[str, Form(max_length=1200)],
    secret: Annotated[str, Form(max_length=300)] = "",
    label: Annotated[str, Form(max_length=100)] = "",
    kinds: Annotated[list[str] | None, Form(max_length=40)] = None,
) -> Response:
    try:
        path = areas.parse_path(area)
    except AreaError as exc:
        return _refused(ctx, str(exc), status.HTTP_400_BAD_REQUEST)
    note(ctx.request, area=path, channel=channel[:16])
    if not can(user, Action.MANAGE_NOTIFY, path):
        raise HTTPException(status.HTTP_403_FORBIDDEN, FORBIDDEN)
    try:
        checked, kind_set = check(channel, address, secret, kinds or [])
    except NotifyTargetError as exc:
        return _refused(ctx, str(exc), status.HTTP_400_BAD_REQUEST)
    target_id = notifier.store.add_target(
        path, channel, checked, secret=secret.strip() if channel == "webhook" else None,
        kinds=kind_set, label=label.strip(), created_by=user.username, now_us=notifier.clock(),
    )  # fmt: skip
    note(ctx.request, object=f"notify-target:{target_id}")
    return RedirectResponse(PAGE, status.HTTP_303_SEE_OTHER)


def _own_target(notifier: Notifier, user: User, target_id: int) -> Target:
    target = notifier.store.target(target_id)
    if target is None or not can(user, Action.MANAGE_NOTIFY, target.area_path):
        raise not_found()
    return target


@router.post(PAGE + "/targets/{target_id}/test")
def test_target(
    target_id: int,
    ctx: PageDep,
    user: CurrentUser,
    notifier: NotifierDep,
    store: AccountStoreDep,
) -> RedirectResponse:
    """发送测试 Send test: a test message to the target now; its result shows in the log."""
    target = _own_target(notifier, user, target_id)
    note(ctx.request, area=target.area_path, channel=target.channel, sent="test")
    with store.db.read() as conn:
        area = areas.get_area(conn, target.area_path) if target.area_path != areas.ROOT else None
    name = (area.name_zh, area.name_en or area.name_zh) if area else ("全部区域", "every area")
    notifier.send_test(target, user.username, name)
    return RedirectResponse(PAGE + "?tested=1", status.HTTP_303_SEE_OTHER)


@router.post(PAGE + "/targets/{target_id}/delete")
def delete_target(
    target_id: int, ctx: PageDep, user: CurrentUser, notifier: NotifierDep
) -> RedirectResponse:
    target = _own_target(notifier, user, target_id)
    note(ctx.request, area=target.area_path, channel=target.channel)
    notifier.store.remove_target(target.id, notifier.clock())
    return RedirectResponse(PAGE, status.HTTP_303_SEE_OTHER)
