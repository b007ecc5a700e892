"""What the console reads and edits in the registry, always limited to a set of visible sites.

Every function takes the site ids the caller may see (or edit); rows of other sites are never
returned, and single lookups outside them answer None exactly as for an id that does not
exist, so ids of other areas cannot be listed or probed. Edits run in one transaction that
also records card history and bumps the registry version (the service then republishes the
affected sites' rosters).
"""

from __future__ import annotations

import secrets
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text

from cloud_ingest.errors import CardInUse, RegistryEditError
from cloud_ingest.registry.names import name_problem
from cloud_ingest.registry.store import Params, Registry
from warmcard.ids import CARD_UID_RE, PERSON_ID_RE

MAX_PER_PAGE = 200
MAX_NAME = 64


@dataclass(frozen=True)
class PersonRow:
    person_id: str
    display_name: str
    site_id: str
    active_cards: int


@dataclass(frozen=True)
class CardRow:
    card_uid: str
    person_id: str
    site_id: str
    active: bool


@dataclass(frozen=True)
class DeviceRow:
    device_id: str
    site_id: str
    mode: str
    debounce_s: float
    enrol_until_us: int | None


@dataclass(frozen=True)
class Assignment:
    card_uid: str
    person_id: str
    valid_from_us: int | None
    valid_to_us: int | None


@dataclass(frozen=True)
class Page:
    """One page of a list; `total` counts every matching row the caller may see."""

    total: int
    rows: list[object]


def _sites(sites: Collection[str]) -> list[str]:
    # An expanding `IN :sites`: one bound parameter per site, and a prefecture's ~1,700 sites
    # stay far below SQLite's limit (32,766).
    return sorted(sites)


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _limits(page: int, per_page: int) -> tuple[int, int]:
    per_page = max(1, min(per_page, MAX_PER_PAGE))
    return per_page, (max(page, 1) - 1) * per_page


# What a PersonRow, CardRow and DeviceRow are read from (lists and single lookups alike).
_PERSON_SELECT = (
    "SELECT p.person_id, p.display_name, p.site_id, "
    "(SELECT count(*) FROM cards c WHERE c.person_id = p.person_id AND c.active = 1) "
    "FROM people p"
)
_CARD_FROM = "FROM cards c JOIN people p ON p.person_id = c.person_id"
_CARD_SELECT = f"SELECT c.card_uid, c.person_id, p.site_id, c.active {_CARD_FROM}"
# `:now` (µs): only an enrol window still running is joined.
_DEVICE_SELECT = (
    "SELECT d.device_id, d.site_id, d.mode, d.debounce_s, e.until_us FROM devices d "
    "LEFT JOIN enrol_windows e ON e.device_id = d.device_id AND e.until_us > :now"
)


def _contains(column: str, param: str = "q") -> str:
    """`column` contains the `_like` pattern `:param`, ignoring case on both engines (SQLite's
    LIKE ignores ASCII case, PostgreSQL's does not)."""
    return f"lower({column}) LIKE lower(:{param}) ESCAPE '\\'"


def _visible(
    alias: str,
    sites: Collection[str],
    site: str | None,
    q: str,
    match: str,
    match_params: dict[str, object],
) -> tuple[str, dict[str, object]]:
    """WHERE clause and parameters of a list: visible sites, then `match` if `q`, then one site.

    `alias` names the table whose `site_id` decides visibility.
    """
    where = f"{alias}.site_id IN :sites"
    params: dict[str, object] = {"sites": _sites(sites)}
    if q:
        where += f" AND ({match})"
        params |= match_params
    if site:
        where += f" AND {alias}.site_id = :site"
        params["site"] = site
    return where, params


def _count(registry: Registry, from_where: str, params: Params) -> int:
    return int(registry.query(f"SELECT count(*) {from_where}", params)[0][0])


def _people_where(
    sites: Collection[str], site: str | None, q: str
) -> tuple[str, dict[str, object]]:
    match = f"{_contains('p.person_id')} OR {_contains('p.display_name')}"
    return _visible("p", sites, site, q, match, {"q": _like(q)})


def search_people(
    registry: Registry,
    sites: Collection[str],
    q: str = "",
    site: str | None = None,
    page: int = 1,
    per_page: int = 50,
) -> Page:
    """People of the visible sites whose id or name contains `q`, by id."""
    limit, offset = _limits(page, per_page)
    where, params = _people_where(sites, site, q)
    total = _count(registry, f"FROM people p WHERE {where}", params)
    rows = registry.query(
        f"{_PERSON_SELECT} WHERE {where} ORDER BY p.person_id LIMIT :limit OFFSET :offset",
        {**params, "limit": limit, "offset": offset},
    )
    return Page(total, list(_person_rows(rows)))


@dataclass(frozen=True)
class PersonExportRow:
    person_id: str
    display_name: str
    site_id: str
    site_name_zh: str
    site_name_en: str
    active_cards: int


EXPORT_BATCH = 1000


def iter_people_export(
    registry: Registry, sites: Collection[str], q: str = "", batch: int = EXPORT_BATCH
) -> Iterator[PersonExportRow]:
    """Every visible person matching `q`, by id, with their site's names (no page limit).

    Read in batches after the last id seen (keyset), so an export of 100,000 people holds one
    batch in memory and never skips or repeats a row when the list is long.
    """
    where, params = _people_where(sites, None, q)
    after = ""
    while True:
        rows = registry.query(
            "SELECT p.person_id, p.display_name, p.site_id, s.name_zh, s.name_en, "
            "(SELECT count(*) FROM cards c WHERE c.person_id = p.person_id AND c.active = 1) "
            f"FROM people p JOIN sites s ON s.site_id = p.site_id WHERE {where} "
            "AND p.person_id > :after ORDER BY p.person_id LIMIT :batch",
            {**params, "after": after, "batch": max(1, batch)},
        )
        yield from (PersonExportRow(*row) for row in rows)
        if len(rows) < batch:
            return
        after = rows[-1][0]


def get_person(registry: Registry, sites: Collection[str], person_id: str) -> PersonRow | None:
    rows = registry.query(
        f"{_PERSON_SELECT} WHERE p.person_id = :person AND p.site_id IN :sites",
        {"person": person_id, "sites": _sites(sites)},
    )
    return _person_rows(rows)[0] if rows else None


def _person_rows(rows: list[tuple[Any, ...]]) -> list[PersonRow]:
    return [PersonRow(str(a), str(b), str(c), int(d)) for a, b, c, d in rows]


def _card_rows(rows: list[tuple[Any, ...]]) -> list[CardRow]:
    return [CardRow(str(u), str(p), str(s), bool(a)) for u, p, s, a in rows]


def person_cards(registry: Registry, person_id: str) -> list[CardRow]:
    """The cards a person holds now (active) or last held (inactive), by UID."""
    return _card_rows(
        registry.query(
            f"{_CARD_SELECT} WHERE c.person_id = :person ORDER BY c.card_uid",
            {"person": person_id},
        )
    )


def _assignments(rows: list[tuple[Any, ...]]) -> list[Assignment]:
    return [
        Assignment(str(u), str(p), f if f is None else int(f), t if t is None else int(t))
        for u, p, f, t in rows
    ]


def person_history(registry: Registry, person_id: str) -> list[Assignment]:
    """Every card this person held, newest first."""
    return _assignments(
        registry.query(
            "SELECT card_uid, person_id, valid_from, valid_to FROM card_assignments "
            "WHERE person_id = :person ORDER BY coalesce(valid_from, 0) DESC, id DESC",
            {"person": person_id},
        )
    )


def search_cards(
    registry: Registry,
    sites: Collection[str],
    q: str = "",
    site: str | None = None,
    active: bool | None = None,
    page: int = 1,
    per_page: int = 50,
) -> Page:
    """Cards whose holder (current, or last for inactive cards) is in a visible site."""
    limit, offset = _limits(page, per_page)
    where, params = _visible(
        "p",
        sites,
        site,
        q,
        f"{_contains('c.card_uid', 'uid')} OR {_contains('c.person_id')}",
        {"uid": _like(q.upper().replace(":", "").replace(" ", "")), "q": _like(q)},
    )
    if active is not None:
        where += " AND c.active = :active"
        params["active"] = int(active)
    total = _count(registry, f"{_CARD_FROM} WHERE {where}", params)
    rows = registry.query(
        f"{_CARD_SELECT} WHERE {where} ORDER BY c.card_uid LIMIT :limit OFFSET :offset",
        {**params, "limit": limit, "offset": offset},
    )
    return Page(total, list(_card_rows(rows)))


def get_card(registry: Registry, sites: Collection[str], card_uid: str) -> CardRow | None:
    rows = registry.query(
        f"{_CARD_SELECT} WHERE c.card_uid = :uid AND p.site_id IN :sites",
        {"uid": card_uid, "sites": _sites(sites)},
    )
    return _card_rows(rows)[0] if rows else None


def card_history(registry: Registry, sites: Collection[str], card_uid: str) -> list[Assignment]:
    """Who held this card when, newest first; holders outside `sites` are left out."""
    return _assignments(
        registry.query(
            "SELECT a.card_uid, a.person_id, a.valid_from, a.valid_to FROM card_assignments a "
            "JOIN people p ON p.person_id = a.person_id WHERE a.card_uid = :uid "
            "AND p.site_id IN :sites ORDER BY coalesce(a.valid_from, 0) DESC, a.id DESC",
            {"uid": card_uid, "sites": _sites(sites)},
        )
    )


def search_devices(
    registry: Registry,
    sites: Collection[str],
    q: str = "",
    site: str | None = None,
    page: int = 1,
    per_page: int = 50,
    now_us: int = 0,
) -> Page:
    """Devices standing in visible sites, with the end of a running enrol window."""
    limit, offset = _limits(page, per_page)
    where, params = _visible("d", sites, site, q, _contains("d.device_id"), {"q": _like(q)})
    total = _count(registry, f"FROM devices d WHERE {where}", params)
    rows = registry.query(
        f"{_DEVICE_SELECT} WHERE {where} ORDER BY d.device_id LIMIT :limit OFFSET :offset",
        {**params, "now": now_us, "limit": limit, "offset": offset},
    )
    return Page(total, list(_device_rows(rows)))


def get_device(
    registry: Registry, sites: Collection[str], device_id: str, now_us: int = 0
) -> DeviceRow | None:
    rows = registry.query(
        f"{_DEVICE_SELECT} WHERE d.device_id = :device AND d.site_id IN :sites",
        {"now": now_us, "device": device_id, "sites": _sites(sites)},
    )
    return _device_rows(rows)[0] if rows else None


def _device_rows(rows: list[tuple[Any, ...]]) -> list[DeviceRow]:
    return [DeviceRow(str(a), str(b), str(c), float(d), e) for a, b, c, d, e in rows]


# ---------------------------------------------------------------------------------- edits


def _check_name(name: str) -> str:
    name = name.strip()
    if not name:
        raise RegistryEditError("显示名为空 display_name is empty")
    if name_problem(name, MAX_NAME):
        raise RegistryEditError(
            f"显示名须为一行可见文字且不超过 {MAX_NAME} 字 "
            f"display_name: one line of visible text, ≤ {MAX_NAME}"
        )
    return name


def new_person_id() -> str:
    """A fresh pseudonymous id: random, so it says nothing about the person or the order."""
    return "P" + secrets.token_hex(6).upper()


def add_person(registry: Registry, display_name: str, site_id: str) -> str:
    """Create a person at a site (the caller checked the right to edit it); returns the id."""
    name = _check_name(display_name)
    person_id = new_person_id()
    with registry.change() as db:
        db.execute(
            text(
                "INSERT INTO people (person_id, display_name, site_id) "
                "VALUES (:person, :name, :site)"
            ),
            {"person": person_id, "name": name, "site": site_id},
        )
    return person_id


def update_person(
    registry: Registry, person_id: str, display_name: str | None, site_id: str | None
) -> None:
    """Rename a person or move them to another site (the caller checked both sites)."""
    with registry.change() as db:
        if display_name is not None:
            db.execute(
                text("UPDATE people SET display_name = :name WHERE person_id = :person"),
                {"name": _check_name(display_name), "person": person_id},
            )
        if site_id is not None:
            db.execute(
                text("UPDATE people SET site_id = :site WHERE person_id = :person"),
                {"site": site_id, "person": person_id},
            )


def assign_card(
    registry: Registry, card_uid: str, person_id: str, editable_sites: Collection[str]
) -> CardRow | None:
    """Give the card (canonical UID) to a person; returns the previous holder's row, if any.

    A card held (active) by someone in a site the editor may not edit raises CardInUse
    without naming the holder. A card moving between two people the editor may edit closes
    the old holder's assignment: that is the card's history.
    """
    if not CARD_UID_RE.fullmatch(card_uid):
        raise RegistryEditError(f"card_uid {card_uid!r} is not canonical upper-case hex")
    if not PERSON_ID_RE.fullmatch(person_id):
        raise RegistryEditError(f"person_id {person_id!r} is not valid")
    with registry.change() as db:
        row = db.execute(text(f"{_CARD_SELECT} WHERE c.card_uid = :uid"), {"uid": card_uid}).first()
        previous = _card_rows([tuple(row)])[0] if row else None
        if previous and previous.active and previous.site_id not in editable_sites:
            raise CardInUse(
                "此卡已属于其他区域的人员，请联系该区域管理员停用 "
                "This card is held in another area; ask that area's manager to deactivate it"
            )
        db.execute(
            text(
                "INSERT INTO cards (card_uid, person_id, active) VALUES (:uid, :person, 1) "
                "ON CONFLICT (card_uid) DO UPDATE SET person_id = excluded.person_id, active = 1"
            ),
            {"uid": card_uid, "person": person_id},
        )
    return previous


def deactivate_card(registry: Registry, card_uid: str) -> None:
    """Take a card out of use (lost, returned); it stays in history and taps as unknown."""
    with registry.change() as db:
        db.execute(text("UPDATE cards SET active = 0 WHERE card_uid = :uid"), {"uid": card_uid})
