"""An alert's wording as people read it: names in place of the ids the alerts store keeps.

The alerts page and the notifications both say it this way (the store keeps only pseudonymous
person ids and site ids; the registry knows the names). An id is replaced only where it stands
alone: a site's id inside one of its kiosks' ids (`xizhou-zhoucheng` in
`xizhou-zhoucheng-canteen`) is part of that kiosk's id, which has a name of its own.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from cloud_ingest.alerts.models import Alert
from cloud_ingest.registry.store import Device
from warmcard.contract import Mode

# The characters ids are made of (person, site and device ids): an id ends where these stop.
_ID_CHARS = "A-Za-z0-9_-"
KIOSK_NAMES = {
    Mode.ENTRANCE: ("入口终端", "entrance kiosk"),
    Mode.CANTEEN: ("食堂终端", "canteen kiosk"),
}


def person_name(people: dict[str, tuple[str, str]], person_id: str | None) -> str:
    """The person's name from the registry (`people_homes`), else the id; '' for no person."""
    if not person_id:
        return ""
    return people.get(person_id, ("", ""))[0] or person_id


def device_names(devices: Iterable[Device], sites: dict[str, str], english: bool) -> dict[str, str]:
    """device_id -> "<site name><entrance/canteen kiosk>" (`sites`: site_id -> name)."""
    out = {}
    for d in devices:
        zh, en = KIOSK_NAMES.get(d.mode, ("终端", "kiosk"))
        site = sites.get(d.site_id, d.site_id)
        out[d.device_id] = f"{site} {en}" if english else f"{site}{zh}"
    return out


def _replace_ids(text: str, names: dict[str, str]) -> str:
    """Each id of `names` that stands alone in `text` replaced by its name, in one pass."""
    present = [i for i in names if i and i in text]
    if not present:
        return text
    alternatives = "|".join(re.escape(i) for i in sorted(present, key=len, reverse=True))
    pattern = re.compile(rf"(?<![{_ID_CHARS}])(?:{alternatives})(?![{_ID_CHARS}])")
    return pattern.sub(lambda m: names[m.group(0)], text)


def place_names(sites: dict[str, str], devices: Iterable[Device], english: bool) -> dict[str, str]:
    """The names of the sites (`sites`: site_id -> name) and of their kiosks, by id: what
    `named` puts in place of the ids; made once for a page or a round of messages."""
    return {**sites, **device_names(devices, sites, english)}


def named(
    text: str, a: Alert | None, people: dict[str, tuple[str, str]], places: dict[str, str]
) -> str:
    """The alert's wording with the names of the person and of the sites and kiosks
    (`places`, from `place_names`) for their ids."""
    if a is not None and a.person_id and (name := person_name(people, a.person_id)) != a.person_id:
        return _replace_ids(text, {**places, a.person_id: name})
    return _replace_ids(text, places)
