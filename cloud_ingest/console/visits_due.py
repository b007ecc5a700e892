"""The visit-due list as the console shows it: each flagged person with an open visit-due alert
in the user's areas, where and when they were last seen, longest unseen first."""

from __future__ import annotations

from typing import Any

from cloud_ingest import i18n
from cloud_ingest.alerts.models import Kind, State
from cloud_ingest.alerts.store import AlertStore
from cloud_ingest.console.roles import Action, User, can, view_areas
from cloud_ingest.registry.store import Registry


def due_rows(store: AlertStore, registry: Registry, user: User) -> list[dict[str, Any]]:
    """One row per open or acknowledged visit-due alert the user may view."""
    open_due = store.find(
        view_areas(user), kinds=[Kind.VISIT_DUE], states=[State.OPEN, State.ACKNOWLEDGED]
    )
    people = [a.subject for a in open_due]
    seen = store.last_seen(people)
    flags: dict[str, list[str]] = {}
    for person, flag, _ in store.flags():
        flags.setdefault(person, []).append(flag)
    tz = {s.site_id: s.tz for s in registry.sites()}
    open_due.sort(key=lambda a: seen[a.subject].ts_us if a.subject in seen else 0)
    rows = []  # longest unseen first
    for a in open_due:
        last = seen.get(a.subject)
        rows.append(
            {
                "alert_id": a.id,
                "person_id": a.subject,
                "site_id": a.site_id,
                "area_path": a.area_path,
                "flags": flags.get(a.subject, []),
                "due_since": a.opened_at,
                "due_since_local": i18n.format_ts(a.opened_at, tz.get(a.site_id or "")),
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
            }
        )
    return rows
