"""A person's contact phone and address, for the watcher who visits them (关爱 well-being).

Kept in their own table (`person_contacts`, revision registry_0003), never in `people`: no
kiosk roster, people export or report reads it. Only the console's person page and visit cards
show it, and only to roles with the contacts right (`Action.VIEW_CONTACTS`). Not registry data
proper: a change bumps no version and republishes no roster.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from sqlalchemy import Connection, text

from cloud_ingest.errors import RegistryEditError
from cloud_ingest.registry.store import IN_CHUNK, Registry

PHONE_RE = re.compile(r"[0-9+\- ]{5,20}")
MAX_ADDRESS = 200


@dataclass(frozen=True)
class Contact:
    person_id: str
    phone: str
    address: str
    updated_by: str
    updated_us: int


def _no_control(value: str, what: str) -> None:
    if any(unicodedata.category(ch) in ("Cc", "Cf") for ch in value):
        raise RegistryEditError(f"{what}含控制字符 {what} contains control characters")


def clean(phone: str, address: str) -> tuple[str, str]:
    """The phone and address as stored, or RegistryEditError saying what is wrong.

    Phone: digits, +, - and spaces, 5–20 characters (or empty). Address: at most 200 characters.
    """
    _no_control(phone, "电话 phone ")
    _no_control(address, "地址 address ")
    phone, address = phone.strip(), address.strip()
    if phone and not PHONE_RE.fullmatch(phone):
        raise RegistryEditError(
            f"电话无效 phone {phone!r}: 5–20 digits, '+', '-' or spaces, e.g. 138 0000 0000"
        )
    if len(address) > MAX_ADDRESS:
        raise RegistryEditError(f"地址过长 address longer than {MAX_ADDRESS} characters")
    return phone, address


def contacts_of(registry: Registry, person_ids: list[str]) -> dict[str, Contact]:
    """person_id -> their contact, for those who have one."""
    out: dict[str, Contact] = {}
    for i in range(0, len(person_ids), IN_CHUNK):
        for row in registry.query(
            "SELECT person_id, phone, address, updated_by, updated_us FROM person_contacts"
            " WHERE person_id IN :ids",
            {"ids": person_ids[i : i + IN_CHUNK]},
        ):
            out[row[0]] = Contact(row[0], row[1], row[2], row[3], int(row[4]))
    return out


def set_contact(
    registry: Registry, person_id: str, phone: str, address: str, by: str, now_us: int
) -> Contact | None:
    """Store (or, both empty, delete) the person's contact; the person must exist."""
    phone, address = clean(phone, address)
    with registry.write() as conn:
        known = conn.execute(
            text("SELECT 1 FROM people WHERE person_id = :p"), {"p": person_id}
        ).first()
        if known is None:
            raise RegistryEditError(f"人员不存在 no person {person_id!r}")
        if not phone and not address:
            delete_contacts(conn, person_id)
            return None
        conn.execute(
            text(
                "INSERT INTO person_contacts (person_id, phone, address, updated_by, updated_us)"
                " VALUES (:p, :phone, :address, :by, :now) ON CONFLICT (person_id) DO UPDATE SET"
                " phone = excluded.phone, address = excluded.address,"
                " updated_by = excluded.updated_by, updated_us = excluded.updated_us"
            ),
            {"p": person_id, "phone": phone, "address": address, "by": by, "now": now_us},
        )
    return Contact(person_id, phone, address, by, now_us)


def delete_contacts(conn: Connection, person_id: str) -> int:
    """Delete the person's contact inside the caller's registry transaction (edit, erasure)."""
    return conn.execute(
        text("DELETE FROM person_contacts WHERE person_id = :p"), {"p": person_id}
    ).rowcount
