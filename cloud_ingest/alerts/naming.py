"""An alert's wording as people read it: names in place of the ids the alerts store keeps.

The alerts page and the notifications both say it this way (the store keeps only pseudonymous
person ids and site ids; the registry knows the names).
"""

from __future__ import annotations

from cloud_ingest.alerts.models import Alert


def person_name(people: dict[str, tuple[str, str]], person_id: str | None) -> str:
    """The person's name from the registry (`people_homes`), else the id; '' for no person."""
    if not person_id:
        return ""
    return people.get(person_id, ("", ""))[0] or person_id


def named(
    text: str, a: Alert | None, people: dict[str, tuple[str, str]], sites: dict[str, str]
) -> str:
    """The alert's wording with the person's and the sites' names for their ids."""
    if a is not None and a.person_id and (name := person_name(people, a.person_id)) != a.person_id:
        text = text.replace(a.person_id, name)
    for site_id, site_name in sorted(sites.items(), key=lambda kv: -len(kv[0])):
        if site_id and site_id in text:
            text = text.replace(site_id, site_name)
    return text
