"""The visit-due list as the console shows it: each flagged person with an open visit-due alert
in the user's areas, where and when they were last seen, days unseen (closed days at their
home site not counted, and shown apart), and their phone and address for roles with the
contacts right; longest unseen first."""

from __future__ import annotations

from typing import Any

from cloud_ingest import i18n
from cloud_ingest.alerts.closures import Closures, closed_spans, overlap_us
from cloud_ingest.alerts.models import Kind, State
from cloud_ingest.alerts.store import AlertStore
from cloud_ingest.alerts.wellbeing import DAY_US, reference_us
from cloud_ingest.console.roles import Action, User, can, view_areas
from cloud_ingest.registry.contacts import contacts_of
from cloud_ingest.registry.store import Registry


def due_rows(
    store: AlertStore, registry: Registry, user: User, now_us: int
) -> list[dict[str, Any]]:
    """One row per open or acknowledged visit-due alert the user may view: every one (a
    prefecture's list is as long as the people due; at most one alert per flagged person)."""
    open_due = store.find(
        view_areas(user),
        kinds=[Kind.VISIT_DUE],
        states=[State.OPEN, State.ACKNOWLEDGED],
        limit=None,
    )
    people = [a.subject for a in open_due]
    seen = store.last_seen(people)
    visits = store.last_visits()
    flags: dict[str, list[tuple[str, int]]] = {}
    for person, flag, flagged_at in store.flags():
        flags.setdefault(person, []).append((flag, flagged_at))
    tz = {s.site_id: s.tz for s in registry.sites()}
    closures = Closures(store).all()
    contacts = contacts_of(
        registry, [a.subject for a in open_due if can(user, Action.VIEW_CONTACTS, a.area_path)]
    )
    rows: list[dict[str, Any]] = []
    for a in open_due:
        last = seen.get(a.subject)
        flagged = [t for _, t in flags.get(a.subject, [])] or [a.opened_at]
        since = reference_us(flagged, last, visits.get(a.subject))
        spans = closed_spans(closures, a.area_path, tz.get(a.site_id or ""), now_us)
        paused = overlap_us(spans, since, now_us)
        contact = contacts.get(a.subject)
        rows.append(
            {
                "alert_id": a.id,
                "person_id": a.subject,
                "site_id": a.site_id,
                "area_path": a.area_path,
                "flags": [f for f, _ in flags.get(a.subject, [])],
                "due_since": a.opened_at,
                "due_since_local": i18n.format_ts(a.opened_at, tz.get(a.site_id or "")),
                "unseen_us": now_us - since - paused,
                "days": int((now_us - since - paused) // DAY_US),
                "closed_days": int(paused // DAY_US),
                "last_seen_at": last.ts_us if last else None,
                "last_seen_local": i18n.format_ts(last.ts_us, tz.get(last.site_id))
                if last
                else None,
                "last_seen_site": last.site_id if last else None,
                "last_seen_device": last.device_id if last else None,
                "last_seen_kind": last.kind if last else None,
                "detail": f"{a.detail_zh} {a.detail_en}",
                "detail_zh": a.detail_zh,
                "detail_en": a.detail_en,
                "can_record": can(user, Action.RECORD_VISIT, a.area_path),
                **({"phone": contact.phone, "address": contact.address} if contact else {}),
            }
        )
    rows.sort(key=lambda r: -int(r["unseen_us"]))  # longest unseen first
    return rows
