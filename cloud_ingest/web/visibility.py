"""Which registry sites a console user may see or edit, from their grants and the area tree.

A site is placed in the hierarchy by the console's `areas` table. A site the table does not
place is treated as lying at the root: only users granted the whole hierarchy ('/') see it.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends

from cloud_ingest.console.accounts import Action, User, sites_allowed
from cloud_ingest.registry import areas
from cloud_ingest.registry.store import Registry
from cloud_ingest.web.deps import Service
from cloud_ingest.web.security import AccountStoreDep, CurrentUser


@dataclass(frozen=True)
class Scope:
    """The user and the site ids they may view, export and edit in the registry."""

    user: User
    view: frozenset[str]
    edit: frozenset[str]
    paths: dict[str, str]


def scope_for(user: User, conn: sqlite3.Connection, registry: Registry) -> Scope:
    placed = areas.site_paths(conn)
    paths = {s.site_id: areas.place_of(s.site_id, placed) for s in registry.sites()}
    view = sites_allowed(user, Action.VIEW, paths, placed)
    edit = sites_allowed(user, Action.EDIT_REGISTRY, paths, placed)
    return Scope(user, view, edit, paths)


def current_scope(user: CurrentUser, store: AccountStoreDep, service: Service) -> Scope:
    return scope_for(user, store.conn, service.registry)


ScopeDep = Annotated[Scope, Depends(current_scope)]
