"""Self-healing: the console reconciles the recent days by itself, asks kiosks to re-send what
is missing, checks on later rounds that it arrived, and alerts only on what it cannot heal.

One round (`Healer.round`), every `[heal] every_s` on the console's heal thread:

1. Take the heal lease (cloud_ingest.ops.heal_ledger): with several consoles, one heals per
   round; the others skip it.
2. Reconcile every registered device over the last `days` local days (cloud_ingest.ops.reconcile,
   the same check as `warmcard reconcile`), with the heartbeats the console already holds.
3. Per device with `missing` seqs (never `in_flight`: those are still in the kiosk's outbox):
   wait until the gap has been open `grace_s`, then send ResendCommands (at most
   `max_resend_per_round` seqs per round in all), and no sooner than `grace_s` after the last
   request, and only once taps have been stored (by any kiosk) since it: while ingest or
   InfluxDB is stalled, a request's copies wait in the broker's queue and more would only add
   to it. A gap that shrinks resets the count; one still as large after `max_requests`
   requests raises `gap_unhealed` (the kiosk no longer holds the events, or cannot hear us) and
   is not asked for again until it moves. A kiosk that is offline is not asked and not counted.
4. A gap that closed clears its alert (cleared_by=auto) and is forgotten.
5. A conflict not alerted before raises `seq_conflict` for its device.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from cloud_ingest.alerts.engine import AlertEngine
from cloud_ingest.alerts.models import Finding, Kind
from cloud_ingest.ops.heal_ledger import GapState, HealLedger
from cloud_ingest.ops.reconcile import MISSING, ConflictSource, DeviceReport, Gap, check
from cloud_ingest.ops.resend import Publisher, commands_for, publish_commands
from cloud_ingest.ops.settings import HealSettings
from cloud_ingest.pipeline.influx import Storage
from cloud_ingest.registry.store import Registry
from warmcard.contract import DeviceStatus, ResendCommand

log = logging.getLogger(__name__)

US = 1_000_000
CHUNK = 50  # devices reconciled per call; a stop request is honoured between chunks
LISTED = 8  # gaps or conflicts named in one alert's text


@dataclass
class RoundResult:
    """What one round did; `ran` is False when another console held the lease."""

    ran: bool
    at_us: int
    devices: int = 0
    missing_seqs: int = 0
    requested: list[ResendCommand] = field(default_factory=list)
    healed: list[str] = field(default_factory=list)  # devices whose gap closed this round
    unhealed: list[str] = field(default_factory=list)  # devices alerted gap_unhealed
    conflicts: list[str] = field(default_factory=list)  # devices alerted seq_conflict


def _gap_text(gaps: list[Gap]) -> str:
    shown = ", ".join(f"{g.seqs} ({g.day})" for g in gaps[:LISTED])
    return shown + (f" … +{len(gaps) - LISTED}" if len(gaps) > LISTED else "")


class Healer:
    """One round at a time; clients, clock and publisher are passed in."""

    def __init__(
        self,
        settings: HealSettings,
        *,
        holder: str,
        storage: Storage,
        registry: Registry,
        alerts: AlertEngine,
        statuses: Callable[[], Mapping[str, DeviceStatus | None]],
        publisher: Publisher,
        last_stored_us: Callable[[], int | None],
        seen: ConflictSource | None = None,
        tz: str,
    ) -> None:
        self.settings = settings
        self.holder = holder
        self.storage = storage
        self.registry = registry
        self.alerts = alerts
        self.statuses = statuses
        self.publisher = publisher
        self.last_stored_us = last_stored_us
        self.seen = seen
        self.tz = tz
        self.ledger = HealLedger(alerts.store.db)
        self.rounds = 0
        self.requested_total = 0
        self.last: RoundResult | None = None

    def round(self, now_us: int, stop: Callable[[], bool] = lambda: False) -> RoundResult:
        """Reconcile, request, verify, alert: once."""
        s = self.settings
        result = RoundResult(self.ledger.take_lease(self.holder, now_us, s.lease_us), now_us)
        if not result.ran:
            return result
        today = datetime.fromtimestamp(now_us / US, ZoneInfo(self.tz)).date()
        days = (today - timedelta(days=s.days - 1), today)
        statuses = dict(self.statuses())
        device_ids = [d.device_id for d in self.registry.devices()]
        reports: list[DeviceReport] = []
        for i in range(0, len(device_ids), CHUNK):
            if stop():
                return result
            report = check(
                self.storage,
                self.registry,
                device_ids[i : i + CHUNK],
                days,
                statuses=statuses,
                seen=self.seen,
                default_tz=self.tz,
            )
            reports.extend(report.devices)
        result.devices = len(reports)
        known = self.ledger.gaps()
        budget = s.max_resend_per_round
        findings: list[Finding] = []
        for d in reports:
            findings += self._conflicts(d, now_us, result)
            missing = [g for g in d.gaps if g.state == MISSING]
            n = sum(g.count for g in missing)
            result.missing_seqs += n
            before = known.pop(d.device_id, None)
            if not missing:
                if before is not None:
                    result.healed.append(d.device_id)
                continue
            state = before or GapState(d.device_id, now_us, n, 0, None, False)
            if n < state.missing:  # it shrank: what was asked for is arriving
                state = replace(state, requests=0, alerted=False)
            state = replace(state, missing=n)
            status = d.status
            online = status is not None and status.state == "online"
            waited = now_us - max(state.first_seen_us, state.requested_us or 0) >= s.grace_s * US
            stored = self.last_stored_us()
            if state.requested_us is not None and (stored is None or stored <= state.requested_us):
                # Nothing at all stored since the last request: ingest or InfluxDB is stalled and
                # what was asked for waits in the broker's queue. Asking again would only add
                # copies to that queue, and the silence says nothing about this kiosk.
                self.ledger.put_gap(state)
                continue
            if state.requests >= s.max_requests:
                if not state.alerted:
                    findings.append(self._unhealed(d, missing, state, days, now_us))
                    result.unhealed.append(d.device_id)
                    state = replace(state, alerted=True)
            elif online and waited and budget > 0:
                asked = _trim(missing, budget)
                commands = commands_for(asked, f"heal-{now_us:x}")
                publish_commands(self.publisher, commands)
                result.requested += commands
                budget -= sum(g.count for g in asked)
                state = replace(state, requests=state.requests + 1, requested_us=now_us)
            self.ledger.put_gap(state)
        # Devices with no gap left (or retired from the registry) are healed.
        self.ledger.drop_gaps([*result.healed, *known])
        self.alerts.store.clear_auto(Kind.GAP_UNHEALED, [*result.healed, *known], now_us)
        if findings:
            self.alerts.store.raise_many([(f, self.alerts.area_of(f.site_id)) for f in findings])
        self.rounds += 1
        self.requested_total += len(result.requested)
        self.last = result
        if result.requested or result.healed or findings:
            log.warning(
                "heal round: %d device(s), %d seq(s) missing, %d resend request(s), healed %s, "
                "unhealed %s, conflicts %s",
                result.devices,
                result.missing_seqs,
                len(result.requested),
                result.healed,
                result.unhealed,
                result.conflicts,
            )
        return result

    def _conflicts(self, d: DeviceReport, now_us: int, result: RoundResult) -> list[Finding]:
        found = sorted({(c.seq, c.source) for c in d.conflicts})
        if not found or not self.ledger.new_conflicts(d.device_id, found, now_us):
            return []
        result.conflicts.append(d.device_id)
        listed = d.conflicts[:LISTED]
        seqs = ", ".join(f"{c.seq} ({c.day}, {c.source})" for c in listed)
        more = f" … +{len(d.conflicts) - LISTED}" if len(d.conflicts) > LISTED else ""
        see = (
            f"`warmcard reconcile --device {d.device_id}`, "
            "`warmcard deadletter list --reason conflict`"
        )
        return [
            Finding(
                Kind.SEQ_CONFLICT,
                d.device_id,
                now_us,
                f"设备 {d.device_id} 同一序号出现不同的刷卡：序号 {seqs}{more}。ingest：先到的已"
                "保存，后到的已拒收（死信）；storage：InfluxDB 中一个序号有两个点，会被重复计数。"
                f"请查看 {see}；常见原因是设备的发件箱被重置或从备份恢复，"
                "或两台设备用了同一设备号。",
                f"kiosk {d.device_id} has different taps under one seq: {seqs}{more}. ingest: the "
                "first is stored, the later one refused (dead-lettered); storage: InfluxDB holds "
                f"two points under one seq, counted twice. See {see}; usually the kiosk's outbox "
                "was reset or restored from a backup, or two kiosks share one device id.",
                site_id=d.site_id,
                device_id=d.device_id,
            )
        ]

    def _unhealed(
        self,
        d: DeviceReport,
        missing: list[Gap],
        state: GapState,
        days: tuple[date, date],
        now_us: int,
    ) -> Finding:
        n = state.missing
        text = _gap_text(missing)
        again = (
            f"warmcard reconcile --device {d.device_id} --from {days[0]} --to {days[1]} "
            "--request-resend --mqtt-config operator.toml"
        )
        return Finding(
            Kind.GAP_UNHEALED,
            d.device_id,
            now_us,
            f"设备 {d.device_id} 缺 {n} 条刷卡（序号 {text}），已 {state.requests} 次请求重发仍未"
            "收到。请确认设备在线；设备只保留 14 天内的记录，更早的已无法补回。设备恢复后运行 "
            f"`{again}`；无法补回的刷卡"
            "请在月度报表中人工更正。",
            f"kiosk {d.device_id} is missing {n} tap(s) (seq {text}); {state.requests} resend "
            "request(s) brought none of them. Check that the kiosk is online; it keeps events "
            "for 14 days, older ones cannot be re-sent. Once it is back, run "
            f"`{again}`; correct the monthly figures "
            "by hand for taps that cannot be recovered.",
            site_id=d.site_id,
            device_id=d.device_id,
        )


def _trim(gaps: list[Gap], budget: int) -> list[Gap]:
    """The first `budget` seqs of these gaps, in order."""
    out: list[Gap] = []
    for g in gaps:
        if budget <= 0:
            break
        if g.count > budget:
            g = replace(g, to_seq=g.from_seq + budget - 1)
        out.append(g)
        budget -= g.count
    return out
