"""Well-being: flagged people (独居 lives alone, 困境儿童 child in difficulty) not seen for days.

A flagged person is due a visit (需探访) when the latest of
- their last check-in or meal (the `last_seen` table, kept by the ingest path),
- their latest recorded visit, and
- when they were flagged
is older than the threshold for their flag and area (the most specific area override wins;
with several flags, the shortest threshold). Days their home site is closed (the closure
calendar, `closures`) do not count: the time unseen is (now − reference) less its overlap
with the closures covering the site. The alert clears by itself when they are seen
again, and a recorded visit closes it (cleared_by=user) and restarts the count.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from cloud_ingest import i18n
from cloud_ingest.alerts.closures import Closures, Span, closed_spans, overlap_us
from cloud_ingest.alerts.models import Finding, Kind, LastSeen
from cloud_ingest.alerts.settings import AlertSettings
from cloud_ingest.alerts.store import AlertStore
from cloud_ingest.errors import FlagImportError
from cloud_ingest.registry import areas
from cloud_ingest.registry.store import Registry
from warmcard.ids import PERSON_ID_RE

DAY_US = 86_400 * 1_000_000
FLAG_NAMES: dict[str, tuple[str, str]] = {
    "lives_alone": ("独居", "Lives alone"),
    "child_in_difficulty": ("困境儿童", "Child in difficulty"),
}


def flag_name(flag: str) -> str:
    zh, en = FLAG_NAMES.get(flag, (flag, flag))
    return f"{zh} {en}" if zh != en else zh


def due_days(settings: AlertSettings, flag: str, area_path: str) -> float:
    """The threshold for `flag` in `area_path`: the most specific area override, else default."""
    for path in reversed(areas.ancestors(area_path)):
        override = settings.visit_due_days_by_area.get(path)
        if override is not None and flag in override:
            return override[flag]
    return settings.visit_due_days[flag]


def home_sites(registry: Registry, person_ids: list[str]) -> dict[str, str]:
    """person_id -> home site_id, from the registry's people table."""
    return {person: site for person, (_, site) in registry.people_homes(person_ids).items()}


@dataclass(frozen=True)
class Due:
    """One flagged person and whether a visit is due."""

    person_id: str
    flags: tuple[str, ...]
    site_id: str | None
    area_path: str
    days: float
    since_us: int  # the reference time the threshold counts from
    last_seen: LastSeen | None
    closed: tuple[Span, ...] = ()  # the home site's closures, merged

    def paused_us(self, now_us: int) -> int:
        """Closed time since the reference: it does not count as unseen."""
        return overlap_us(self.closed, self.since_us, now_us)

    def unseen_us(self, now_us: int) -> int:
        return now_us - self.since_us - self.paused_us(now_us)


def reference_us(flagged: list[int], last: LastSeen | None, visit: int | None) -> int:
    """The latest of when flagged, last seen and last visited: the count starts there."""
    return max(flagged + ([last.ts_us] if last else []) + ([visit] if visit else []))


def assess(
    settings: AlertSettings,
    store: AlertStore,
    registry: Registry,
    site_paths: Mapping[str, str],
    now_us: int,
) -> list[Due]:
    """Every flagged person with their threshold, reference time and closed time."""
    by_person: dict[str, list[tuple[str, int]]] = {}
    for person, flag, flagged_at in store.flags():
        if flag in settings.visit_due_days:  # a flag dropped from the settings is ignored
            by_person.setdefault(person, []).append((flag, flagged_at))
    if not by_person:
        return []
    ids = list(by_person)
    seen = store.last_seen(ids)
    visits = store.last_visits()
    homes = home_sites(registry, ids)
    closures = Closures(store).all()
    tz = {s.site_id: s.tz for s in registry.sites()}
    out: list[Due] = []
    for person, flags in by_person.items():
        site = homes.get(person)
        area = areas.place_of(site, site_paths)
        days = min(due_days(settings, f, area) for f, _ in flags)
        last = seen.get(person)
        since = reference_us([t for _, t in flags], last, visits.get(person))
        closed = tuple(closed_spans(closures, area, tz.get(site or ""), now_us))
        out.append(Due(person, tuple(f for f, _ in flags), site, area, days, since, last, closed))
    return out


def evaluate(dues: list[Due], now_us: int, tz_of: Mapping[str, str]) -> list[Finding]:
    """Visit-due findings for the people whose threshold has passed."""
    found: list[Finding] = []
    for d in dues:
        unseen = d.unseen_us(now_us)
        if unseen < d.days * DAY_US:
            continue
        names = "、".join(FLAG_NAMES.get(f, (f, f))[0] for f in d.flags)
        names_en = ", ".join(FLAG_NAMES.get(f, (f, f))[1] for f in d.flags)
        n = int(unseen // DAY_US)
        if d.last_seen is not None:
            ls = d.last_seen
            when = i18n.format_ts(ls.ts_us, tz_of.get(ls.site_id))
            zh = f"{names}：已 {n} 天未到院，最后于 {when} 在 {ls.site_id} 刷卡"
            en = f"{names_en}: not seen for {n} days; last at {ls.site_id} on {when}"
        else:
            zh = f"{names}：已 {n} 天未到院，无刷卡记录"
            en = f"{names_en}: not seen for {n} days; no taps on record"
        found.append(
            Finding(Kind.VISIT_DUE, d.person_id, now_us, zh, en, site_id=d.site_id,
                    person_id=d.person_id)
        )  # fmt: skip
    return found


FLAGS_HEADER = ("person_id", "flag")
ACTIVE = {"": True, "1": True, "yes": True, "是": True, "0": False, "no": False, "否": False}


def read_flags_csv(
    file: Path, known_flags: frozenset[str], registry: Registry
) -> list[tuple[str, str, bool]]:
    """Rows (person_id, flag, active) of a flags CSV; every bad row reported, or none returned.

    Columns: person_id,flag[,active]; active 1 (default) sets the flag, 0 removes it.
    """
    name = str(file)
    try:
        text = file.read_bytes().decode("utf-8-sig")
    except OSError as exc:
        raise FlagImportError([f"{name}:0: 无法读取 cannot read: {exc.strerror}"]) from None
    except UnicodeDecodeError:
        raise FlagImportError(
            [f"{name}:1: 不是 UTF-8 编码 not UTF-8; save the sheet as 'CSV UTF-8'"]
        ) from None
    reader = csv.reader(io.StringIO(text, newline=""))
    header = [h.strip() for h in next(reader, [])]
    if tuple(header[:2]) != FLAGS_HEADER or header[2:] not in ([], ["active"]):
        raise FlagImportError(
            [f"{name}:1: 表头应为 header must be person_id,flag[,active] (got {header})"]
        )
    people = {p for (p,) in registry.query("SELECT person_id FROM people")}
    problems: list[str] = []
    rows: list[tuple[str, str, bool]] = []
    seen: dict[tuple[str, str], int] = {}
    for record in reader:
        line = reader.line_num
        if not any(c.strip() for c in record):
            continue
        if len(record) != len(header):
            problems.append(f"{name}:{line}: expected {len(header)} columns, got {len(record)}")
            continue
        person, flag = record[0].strip(), record[1].strip()
        active_text = record[2].strip().lower() if len(record) > 2 else ""
        if not PERSON_ID_RE.fullmatch(person):
            problems.append(f"{name}:{line}: 人员编号无效 invalid person_id {person!r}")
        elif person not in people:
            problems.append(
                f"{name}:{line}: 人员不存在 person {person!r} is not in the registry; import it"
            )
        if flag not in known_flags:
            problems.append(
                f"{name}:{line}: 未知标记 unknown flag {flag!r}; use one of "
                f"{', '.join(sorted(known_flags))} (or add it to alerts.visit_due_days)"
            )
        if active_text not in ACTIVE:
            problems.append(f"{name}:{line}: active must be 1 or 0, got {active_text!r}")
        if (person, flag) in seen:
            problems.append(
                f"{name}:{line}: 重复 {person},{flag} already on line {seen[(person, flag)]}"
            )
        seen.setdefault((person, flag), line)
        if not problems:
            rows.append((person, flag, ACTIVE.get(active_text, True)))
    if problems:
        raise FlagImportError(problems)
    return rows
