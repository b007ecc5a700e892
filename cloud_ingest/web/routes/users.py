"""User administration pages (/admin/users): an admin lists, creates and changes the users of
the areas they administer; managers and viewers get 403.

Who may change whom is `cloud_ingest.console.user_admin` (the rule is in docs/console-access.md).
Every change is recorded by the AuditTrail rules as an `account` row naming the target user and
the role/area; passwords are never recorded. A password chosen or generated here is shown once,
on the answer to the form, and never again.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import APIRouter, Depends, Form, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from cloud_ingest.console.roles import ROLE_NAMES, Role, User
from cloud_ingest.console.user_admin import UserAdmin, UserAdminRefused, admin_areas
from cloud_ingest.errors import AccountError
from cloud_ingest.registry import areas
from cloud_ingest.web import render
from cloud_ingest.web.audit_trail import note
from cloud_ingest.web.deps import PageDep
from cloud_ingest.web.render import PageContext
from cloud_ingest.web.security import AccountStoreDep, CurrentUser, csrf_protect, require_role

router = APIRouter(
    dependencies=[Depends(require_role(Role.ADMIN)), Depends(csrf_protect)],
    include_in_schema=False,
)
LIST = "/admin/users"
RoleF = Annotated[str, Form(max_length=16)]
AreaF = Annotated[str, Form(max_length=300)]
PasswordF = Annotated[str, Form(max_length=1024)]


def _admin(store: AccountStoreDep, user: CurrentUser) -> UserAdmin:
    return UserAdmin(store, user)


AdminDep = Annotated[UserAdmin, Depends(_admin)]


def _refused(ctx: PageContext, exc: AccountError, back: str) -> HTMLResponse:
    code = exc.status if isinstance(exc, UserAdminRefused) else status.HTTP_400_BAD_REQUEST
    back = LIST if code == status.HTTP_404_NOT_FOUND else back
    return ctx.not_done(str(exc), code, active="users", back=back, switch_to=LIST)


def _area_choices(admin: UserAdmin) -> list[str]:
    """Areas the admin may grant on, for the form's suggestions ('/' for the root)."""
    found: set[str] = set()
    with admin.store.db.read() as conn:
        for top in admin_areas(admin.actor):
            found.add(top)
            found.update(a.path for a in areas.areas_under(conn, top))
    return sorted(p or "/" for p in found)


def _area_names(ctx: PageContext, admin: UserAdmin, paths: list[str]) -> dict[str, str]:
    """Shown names of grant areas and suggestions, keyed like the pages show them ('/': root)."""
    with admin.store.db.read() as conn:
        named = render.area_names(conn, [areas.ROOT if p == "/" else p for p in paths], ctx.lang)
    return {path or "/": name for path, name in named.items()}


def _roles() -> list[tuple[str, tuple[str, str]]]:
    return [(r.label, ROLE_NAMES[r]) for r in Role]


@router.get(LIST, response_class=HTMLResponse)
def users_page(ctx: PageDep, admin: AdminDep) -> HTMLResponse:
    users = admin.users()
    note(ctx.request, results=len(users))
    choices = _area_choices(admin)
    grants = [g.area for u in users for g in u.grants]
    return ctx.render(
        "admin_users.html",
        active="users",
        title_key="user_admin",
        users=users,
        roles=_roles(),
        role_names=ROLE_NAMES,
        area_choices=choices,
        area_names=_area_names(ctx, admin, grants + choices),
    )


@router.post(LIST, response_class=HTMLResponse)
def create_user(
    ctx: PageDep,
    admin: AdminDep,
    username: Annotated[str, Form(max_length=64)],
    role: RoleF,
    area: AreaF,
    password: PasswordF = "",
) -> Response:
    note(ctx.request, object=username.strip().lower()[:64], role=role[:16], area=area[:300])
    try:
        user, chosen = admin.create(username, Role.parse(role), area, password or None)
    except AccountError as exc:
        return _refused(ctx, exc, LIST)
    return _password_shown(ctx, user, chosen, generated=not password)


def _password_shown(ctx: PageContext, user: User, password: str, generated: bool) -> HTMLResponse:
    return ctx.render(
        "admin_password.html",
        active="users",
        title_key="password_once",
        switch_to=f"{LIST}/{user.username}",
        target=user,
        password=password,
        generated=generated,
    )


@router.get(LIST + "/{username}", response_class=HTMLResponse)
def user_page(username: str, ctx: PageDep, admin: AdminDep) -> HTMLResponse:
    try:
        user = admin.target(username)
    except AccountError as exc:
        return _refused(ctx, exc, LIST)
    choices = _area_choices(admin)
    return ctx.render(
        "admin_user.html",
        active="users",
        title_key="user_admin",
        title=user.username,
        target=user,
        is_self=user.id == admin.actor.id,
        roles=_roles(),
        role_names=ROLE_NAMES,
        area_choices=choices,
        area_names=_area_names(ctx, admin, [g.area for g in user.grants] + choices),
    )


def _apply(ctx: PageContext, username: str, change: Callable[[], object]) -> Response:
    """Run a change; back to the user's page, or the refusal (400/403/404) with a way back."""
    try:
        change()
    except AccountError as exc:
        return _refused(ctx, exc, f"{LIST}/{username}")
    return RedirectResponse(f"{LIST}/{username}", status.HTTP_303_SEE_OTHER)


@router.post(LIST + "/{username}/grant", response_class=HTMLResponse)
def grant(username: str, ctx: PageDep, admin: AdminDep, role: RoleF, area: AreaF) -> Response:
    note(ctx.request, grant=role[:16], area=area[:300])
    return _apply(ctx, username, lambda: admin.grant(username, Role.parse(role), area))


@router.post(LIST + "/{username}/revoke", response_class=HTMLResponse)
def revoke(username: str, ctx: PageDep, admin: AdminDep, area: AreaF) -> Response:
    note(ctx.request, revoke=area[:300])
    return _apply(ctx, username, lambda: admin.revoke(username, area))


@router.post(LIST + "/{username}/disable", response_class=HTMLResponse)
def disable(username: str, ctx: PageDep, admin: AdminDep) -> Response:
    note(ctx.request, change="disabled")
    return _apply(ctx, username, lambda: admin.set_disabled(username, True))


@router.post(LIST + "/{username}/enable", response_class=HTMLResponse)
def enable(username: str, ctx: PageDep, admin: AdminDep) -> Response:
    note(ctx.request, change="enabled")
    return _apply(ctx, username, lambda: admin.set_disabled(username, False))


@router.post(LIST + "/{username}/password", response_class=HTMLResponse)
def reset_password(
    username: str, ctx: PageDep, admin: AdminDep, password: PasswordF = ""
) -> Response:
    note(ctx.request, change="password", generated=not password)
    try:
        chosen = admin.reset_password(username, password or None)
        user = admin.target(username)
    except AccountError as exc:
        return _refused(ctx, exc, f"{LIST}/{username}")
    return _password_shown(ctx, user, chosen, generated=not password)
