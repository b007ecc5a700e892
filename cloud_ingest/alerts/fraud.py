"""Anti-fraud checks on every stored batch: they raise alerts and never change the counts.

Rules (thresholds in AlertSettings):
- two_sites: one person's card used at two different sites within `two_sites_minutes`;
- meal_repeat: the kiosk reported an "already served" tap;
- meal_two_canteens: two meals for one person in the same period of the same local day,
  from two different canteen kiosks (each kiosk only knows its own meals);
- outside_hours: a tap before opening or after closing (± grace), unless it is a meal inside
  one of the site's meal windows;
- tap_burst: more than `burst_taps` taps within `burst_seconds` at one kiosk.

Everything is kept in memory windows keyed by event time, so a backlog arriving late is judged
by when the taps happened. Redelivered events (same device and seq) are ignored. The ingest
hot path calls `observe` once per batch, so each event costs a few dict operations.

With several ingest workers sharing the subscription, each sees only its share of events; the
cross-event rules then only compare events one worker saw (see docs/alerts.md).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from typing import cast
from zoneinfo import ZoneInfo

from cloud_ingest import i18n
from cloud_ingest.alerts.models import Finding, Kind
from cloud_ingest.alerts.settings import AlertSettings
from cloud_ingest.pipeline.live import LiveEvent
from cloud_ingest.registry.store import Registry, Site
from warmcard.contract import Kind as TapKind
from warmcard.contract import MealPeriod
from warmcard.localtime import day_window

US = 1_000_000
MINUTE_US = 60 * US
SEEN_MAX = 200_000  # (device, seq) pairs remembered for redelivery
# Taps that show the person was there; a check_out may be the kiosk's own at closing time.
PRESENCE = frozenset({TapKind.CHECK_IN, TapKind.MEAL, TapKind.MEAL_REPEAT})
MEALS = frozenset({TapKind.MEAL, TapKind.MEAL_REPEAT})
TAP_NAMES_ZH = {
    TapKind.CHECK_IN: "到院",
    TapKind.CHECK_OUT: "离院",
    TapKind.MEAL: "用餐",
    TapKind.MEAL_REPEAT: "重复用餐",
    TapKind.UNKNOWN_CARD: "未登记卡",
}


def _minutes(hhmm: str) -> int:
    h, _, m = hhmm.partition(":")
    return int(h) * 60 + int(m)


@dataclass
class _SiteDay:
    """A site's local day and its opening hours and meal windows, in microseconds."""

    date: str
    start_us: int
    end_us: int
    open_us: int
    close_us: int
    meals: tuple[tuple[int, int], ...]


class FraudDetector:
    def __init__(self, settings: AlertSettings, registry: Registry, default_tz: str) -> None:
        self.settings = settings
        self.registry = registry
        self.default_tz = default_tz
        self._seen: dict[tuple[str, int], None] = {}
        self._sites_at: dict[str, dict[str, int]] = {}  # person -> site -> latest presence ts
        self._meals: dict[tuple[str, str, MealPeriod], str] = {}  # (person, date, period) -> dev
        self._taps: dict[str, deque[int]] = {}  # device -> recent tap times
        self._days: dict[str, _SiteDay] = {}
        self._registry_version = -1

    def _site_day(self, site_id: str, ts_us: int) -> _SiteDay | None:
        day = self._days.get(site_id)
        if day is not None and day.start_us <= ts_us < day.end_us:
            return day
        site: Site | None = self.registry.site(site_id)
        if site is None:
            return None
        date, start, end = day_window(ZoneInfo(site.tz or self.default_tz), ts_us)
        # Offsets from local midnight: exact except on a DST change day (not in China).
        day = _SiteDay(
            date,
            start,
            end,
            start + _minutes(site.opening) * MINUTE_US,
            start + _minutes(site.closing) * MINUTE_US,
            tuple(
                (start + _minutes(w.start) * MINUTE_US, start + _minutes(w.end) * MINUTE_US)
                for w in site.meals
            ),
        )
        self._days[site_id] = day
        return day

    def observe(self, batch: Iterable[tuple[str, LiveEvent]]) -> list[Finding]:
        """Check one stored batch; returns at most one finding per (kind, subject)."""
        if self.registry.version != self._registry_version:
            self._registry_version = self.registry.version
            self._days.clear()  # opening hours or meal windows may have changed
        s = self.settings
        two_sites_us = int(s.two_sites_minutes * MINUTE_US)
        grace_us = int(s.hours_grace_minutes * MINUTE_US)
        burst_us = int(s.burst_seconds * US)
        burst_n = s.burst_taps
        seen = self._seen
        # The hot loop only notes hits, (kind, subject) -> (site, event, extra); the wording
        # is made once per batch below, not once per event of a long burst.
        hits: dict[tuple[Kind, str], tuple[str, LiveEvent, object]] = {}
        for site_id, ev in batch:
            key = (ev.device_id, ev.seq)
            if key in seen:
                continue
            seen[key] = None
            if len(seen) > SEEN_MAX:
                del seen[next(iter(seen))]
            ts = ev.ts_us
            kind = ev.kind
            person = ev.person_id
            device = ev.device_id

            taps = self._taps.get(device)
            if taps is None:
                taps = self._taps[device] = deque()
            taps.append(ts)
            while taps[0] <= ts - burst_us:
                taps.popleft()
            if len(taps) > burst_n:
                hits[(Kind.TAP_BURST, device)] = (site_id, ev, len(taps))

            day = self._site_day(site_id, ts)
            if (
                day is not None
                and (ts < day.open_us - grace_us or ts > day.close_us + grace_us)
                and not (
                    kind in MEALS and any(a - grace_us <= ts <= b + grace_us for a, b in day.meals)
                )
            ):
                hits[(Kind.OUTSIDE_HOURS, site_id)] = (site_id, ev, None)

            if person is None:
                continue
            if kind is TapKind.MEAL_REPEAT:
                hits[(Kind.MEAL_REPEAT, person)] = (site_id, ev, None)
            elif kind is TapKind.MEAL and ev.meal_period is not None and day is not None:
                first = self._meals.setdefault((person, day.date, ev.meal_period), device)
                if first != device:
                    hits[(Kind.MEAL_TWO_CANTEENS, person)] = (site_id, ev, (first, day.date))
            if kind in PRESENCE:
                sites = self._sites_at.get(person)
                if sites is None:
                    sites = self._sites_at[person] = {site_id: ts}
                    continue
                for other, other_ts in sites.items():
                    if other != site_id and abs(ts - other_ts) <= two_sites_us:
                        hits[(Kind.TWO_SITES, person)] = (site_id, ev, other)
                if sites.get(site_id, 0) < ts:
                    sites[site_id] = ts
        return [self._finding(k, subj, *hit) for (k, subj), hit in hits.items()]

    def _finding(
        self, kind: Kind, subject: str, site_id: str, ev: LiveEvent, extra: object
    ) -> Finding:
        """The bilingual wording of one hit."""
        s = self.settings
        device, person = ev.device_id, ev.person_id
        period = ev.meal_period.value if ev.meal_period else "?"
        # Chinese text says the meal and the tap in Chinese (not "breakfast" inside a sentence).
        period_zh = i18n.t(period, i18n.ZH) if ev.meal_period else "未知餐次"
        tap_zh = TAP_NAMES_ZH.get(ev.kind, ev.kind.value)
        if kind is Kind.TAP_BURST:
            zh = f"设备 {device} 在 {s.burst_seconds:g} 秒内刷卡 {extra} 次"
            en = f"{extra} taps within {s.burst_seconds:g} s at kiosk {device}"
        elif kind is Kind.OUTSIDE_HOURS:
            zh = f"站点 {site_id} 在开放时间外有刷卡（设备 {device}，{tap_zh}）"
            en = f"tap outside opening hours at site {site_id} (kiosk {device}, {ev.kind.value})"
        elif kind is Kind.MEAL_REPEAT:
            zh = f"人员 {person} 同一餐次再次刷卡（{period_zh}，设备 {device}）"
            en = f"person {person} tapped again for {period} at kiosk {device}"
        elif kind is Kind.MEAL_TWO_CANTEENS:
            first, date = cast(tuple[str, str], extra)
            zh = f"人员 {person} {date} {period_zh} 在两处用餐（{first}、{device}）"
            en = f"person {person} had {period} on {date} at two canteens ({first}, {device})"
        else:
            zh = (
                f"人员 {person} 的卡在 {s.two_sites_minutes:g} 分钟内于两处使用"
                f"（{extra}、{site_id}）"
            )
            en = (
                f"card of person {person} used at two sites within "
                f"{s.two_sites_minutes:g} min ({extra}, {site_id})"
            )
        return Finding(
            kind, subject, ev.ts_us, zh, en, site_id=site_id, device_id=device, person_id=person
        )

    def prune(self, now_us: int) -> None:
        """Forget windows no rule can still use (call now and then, not per batch)."""
        keep_us = max(int(self.settings.two_sites_minutes * MINUTE_US), 0)
        for person in list(self._sites_at):
            sites = self._sites_at[person]
            for site in [k for k, ts in sites.items() if ts < now_us - keep_us - 86_400 * US]:
                del sites[site]
            if not sites:
                del self._sites_at[person]
        # Meal keys hold a local date; two days back is safely over in any zone.
        old = {d.date for d in self._days.values()}
        if len(self._meals) > 0:
            cutoff = min(old) if old else ""
            for meal_key in [k for k in self._meals if k[1] < cutoff]:
                del self._meals[meal_key]
