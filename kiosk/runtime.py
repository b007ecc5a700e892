"""The running kiosk, composed of the gateway's parts: reader loop, policy, outbox, feedback,
uplink, ticker.

Order for every tap: reader -> policy.decide -> outbox.record (committed) -> policy.apply ->
feedback. The person sees success only for a tap already on disk. If the outbox cannot commit
(disk full, database error) the answer is FAULT and nothing is acknowledged.

Until a DeviceConfig is known (cloud's retained config, the cached copy, or
`settings.initial_config`), taps are answered FAULT "未配置 Not configured" and not recorded: the
kiosk cannot know whether a tap is a check-in or a meal, and an event with a guessed kind would
be counted wrongly. The refused tap is logged with its UID, and the visible fault tells staff
the kiosk is not in service. The cached config makes this a first-installation state only.

A staff card at a canteen opens a staff session (`STAFF_SESSION_S`): the screen lists today's
elders (`meal_list`) and one touch records a meal by hand (`record_manual`), committed like a
tap, marked manual, with the staff card as witness. The session serves one meal; any other tap
ends it, so an elder at the kiosk never finds a list someone left open.
"""

from __future__ import annotations

import dataclasses
import logging
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass

from firmware_gateway.clock import Clock, SystemClock
from firmware_gateway.errors import GatewayError, OutboxError, OutboxFull
from firmware_gateway.outbox import DEFAULT_RETENTION_S, Outbox
from firmware_gateway.readers.base import Reader
from firmware_gateway.settings import GatewaySettings
from firmware_gateway.uplink import SOFTWARE, Uplink, UplinkTiming
from kiosk.cache import LocalCache
from kiosk.feedback import Feedback, show_decision
from kiosk.policy import (
    MSG_DISK_FULL,
    MSG_FAULT,
    MSG_NO_STAFF_CARD,
    MSG_NOT_CONFIGURED,
    MSG_READER_FAULT,
    Decision,
    Outcome,
    Policy,
)
from warmcard.contract import DeviceConfig, ReaderState, Roster, RosterEntry
from warmcard.downlink_commands import EraseCommand

log = logging.getLogger("warmcard.gateway")

# How long a staff card's list stays open for one touch (the screen holds it as long).
STAFF_SESSION_S = 60.0


@dataclass(frozen=True)
class StaffSession:
    """A staff card was tapped: one meal may be recorded by hand until `until` (monotonic s)."""

    witness: RosterEntry
    until: float


@dataclass(frozen=True)
class ListedElder:
    """One line of the staff's list: who, and whether this meal period is already served."""

    person_id: str
    name: str
    served: bool


def _who(decision: Decision) -> str:
    """The person a tap is logged as: the pseudonymous id, never the card number or the name.

    Logs (journald, copied off the SD card for support) outlive the erasure of a person, and a
    card number is as identifying as a name; the outbox keeps the card for the cloud.
    """
    return decision.person_id or "unknown-card"


class Kiosk:
    """One kiosk. `start()` runs its threads; `stop()` ends them and closes reader and outbox."""

    def __init__(
        self,
        settings: GatewaySettings,
        reader: Reader,
        feedback: Feedback,
        clock: Clock | None = None,
        *,
        rng: random.Random | None = None,
        timing: UplinkTiming | None = None,
        retention_s: float = DEFAULT_RETENTION_S,
        poll_timeout_s: float = 0.2,
        tick_s: float = 1.0,
        prune_every_s: float = 3600.0,
        software: str = SOFTWARE,
    ) -> None:
        self.settings = settings
        self.device_id = settings.device_id
        self.reader = reader
        self.feedback = feedback
        self.clock: Clock = clock or SystemClock()
        self.poll_timeout_s = poll_timeout_s
        self.tick_s = tick_s
        self.prune_every_s = prune_every_s
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        self.cache = LocalCache(settings.data_dir, settings.cache_key_file)
        self.outbox = Outbox(
            settings.outbox_path,
            settings.device_id,
            self.clock,
            min_free_bytes=settings.min_free_bytes,
            retention_s=retention_s,
        )
        self.uplink = Uplink(
            settings.device_id,
            settings.mqtt,
            self.outbox,
            self.clock,
            rng=rng,
            heartbeat_s=settings.heartbeat_s,
            timing=timing,
            on_config=self.apply_config,
            on_roster=self.apply_roster,
            on_erase=self.forget,
            reader_state=lambda: self.reader.state,
            software=software,
        )
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._changed = threading.Condition()
        self._threads: list[threading.Thread] = []
        self._liveness: dict[str, float] = {}
        self._policy: Policy | None = None
        self._staff: StaffSession | None = None
        self.unconfigured_taps = 0
        config = self.cache.config or settings.initial_config
        if config is not None:
            self._install(config)

    # ------------------------------------------------------------------ config and roster

    @property
    def config(self) -> DeviceConfig | None:
        return self._policy.config if self._policy is not None else None

    @property
    def roster(self) -> Roster | None:
        return self.cache.roster

    @property
    def policy(self) -> Policy | None:
        return self._policy

    def _install(self, config: DeviceConfig) -> None:
        """A policy for this config, with today's state rebuilt from the outbox."""
        policy = Policy(config, self.cache.lookup)
        now = self.clock.now_us()
        replayed = policy.replay(self.outbox.events_since(policy.day_start_us(now)))
        with self._lock:
            self._policy = policy
        log.info(
            "%s: %s mode, %d of today's events replayed, %d inside",
            self.device_id,
            config.mode.value,
            replayed,
            len(policy.inside),
        )

    def apply_config(self, config: DeviceConfig) -> None:
        """A config from the cloud (retained downlink): cache it and switch policy if it changed."""
        with self._lock:
            self.cache.update_config(config)
            if self._policy is None or self._policy.config != config:
                self._install(config)
        self._notify()

    def apply_roster(self, roster: Roster) -> None:
        """A roster from the cloud: kept only if it is for this kiosk's site."""
        config = self.config
        if config is not None and roster.site_id != config.site_id:
            log.error(
                "ignoring roster for site %s: this kiosk is at %s", roster.site_id, config.site_id
            )
            return
        self.cache.update_roster(roster)
        self._notify()

    def forget(self, command: EraseCommand) -> None:
        """The cloud erased a person (the uplink has pseudonymised the outbox): drop them from
        the cached roster if a roster without them has not come yet, and rebuild today's state
        from the pseudonymised outbox, so no id of theirs stays in memory either."""
        with self._lock:
            roster = self.cache.roster
            if roster is not None:
                cards = set(command.card_uids)
                kept = [
                    e
                    for e in roster.entries
                    if e.person_id != command.person_id and e.card_uid not in cards
                ]
                if len(kept) != len(roster.entries):
                    self.cache.update_roster(roster.model_copy(update={"entries": kept}))
            config = self.config
            if config is not None:
                self._install(config)
        self._notify()

    def _notify(self) -> None:
        with self._changed:
            self._changed.notify_all()

    def wait_ready(self, timeout: float) -> bool:
        """Wait until both a config and a roster are known (from the broker or the cache)."""
        with self._changed:
            return self._changed.wait_for(
                lambda: self.config is not None and self.roster is not None, timeout
            )

    # ------------------------------------------------------------------ taps

    def handle_tap(self, card_uid: str) -> Decision:
        """Decide, commit, then answer one tap. Called by the reader loop; public for tools."""
        with self._lock:
            policy = self._policy
            if policy is None:
                self.unconfigured_taps += 1
                log.error("%s: tap refused: no config yet", self.device_id)
                decision = Decision(card_uid, None, Outcome.FAULT, MSG_NOT_CONFIGURED)
            else:
                decision = self._commit(policy, policy.decide(card_uid, self.clock.now_us()))
            self._staff = None  # any tap ends an open list; a staff card opens a new one
            if decision.outcome is Outcome.STAFF:
                witness = self.cache.lookup(card_uid)
                assert witness is not None  # the policy found it on the roster
                self._staff = StaffSession(witness, self.clock.monotonic() + STAFF_SESSION_S)
                log.info("%s: staff card %s opened the meal list", self.device_id, card_uid)
        self._show(decision)
        return decision

    # ------------------------------------------------------------------ meals by hand

    def staff_session(self) -> StaffSession | None:
        """The open staff session, if a staff card was tapped and it has not expired."""
        with self._lock:
            session = self._staff
            if session is not None and self.clock.monotonic() >= session.until:
                self._staff = None
                return None
            return session

    def meal_list(self) -> list[ListedElder] | None:
        """Today's elders for the staff's list; None when no staff session is open."""
        with self._lock:
            policy, roster = self._policy, self.cache.roster
            if self.staff_session() is None or policy is None:
                return None
            entries = roster.entries if roster is not None else []
            listed = policy.meal_list(entries, self.clock.now_us())
        return [ListedElder(e.person_id, e.display_name, served) for e, served in listed]

    def close_staff_session(self) -> None:
        with self._lock:
            self._staff = None

    def record_manual(self, person_id: str) -> Decision:
        """Record, in the open staff session, a meal by hand for this elder; then answer it."""
        with self._lock:
            policy, session = self._policy, self.staff_session()
            if policy is None or session is None:
                decision = Decision("", None, Outcome.FAULT, MSG_NO_STAFF_CARD)
            else:
                roster = self.cache.roster
                elder = next(
                    (e for e in (roster.entries if roster else []) if e.person_id == person_id),
                    None,
                )
                manual = policy.decide_manual(elder, session.witness, self.clock.now_us())
                decision = self._commit(policy, manual)
                self._staff = None  # one touch, one meal
                log.info(
                    "%s: meal by hand for %s, witness %s: %s",
                    self.device_id,
                    person_id,
                    session.witness.card_uid,
                    decision.outcome.value,
                )
        self._show(decision)
        return decision

    def _commit(self, policy: Policy, decision: Decision) -> Decision:
        """Record a decision that makes an event; on failure it becomes FAULT."""
        if decision.kind is None:
            return decision
        try:
            event = self.outbox.record(
                decision.card_uid,
                decision.kind,
                person_id=decision.person_id,
                meal_period=decision.meal_period,
                auto=decision.auto,
                clock_synced=self.clock.synced(),
                manual=decision.manual,
                witness_card=decision.witness_card,
            )
        except OutboxFull as exc:
            log.error("%s: tap of %s NOT recorded: %s", self.device_id, _who(decision), exc)
            return dataclasses.replace(decision, outcome=Outcome.FAULT, message=MSG_DISK_FULL)
        except OutboxError as exc:
            log.error("%s: tap of %s NOT recorded: %s", self.device_id, _who(decision), exc)
            return dataclasses.replace(decision, outcome=Outcome.FAULT, message=MSG_FAULT)
        policy.apply(event)
        log.info("%s: seq %d %s %s", self.device_id, event.seq, event.kind.value, _who(decision))
        return decision

    def _show(self, decision: Decision) -> None:
        try:
            show_decision(self.feedback, decision.outcome, decision.message, decision.kind)
        except Exception:  # a broken LED must not stop the reader loop
            log.exception("feedback failed for %s", decision.outcome.value)

    def run_auto_checkouts(self) -> list[Decision]:
        """Check out, after closing, everyone still inside; called by the ticker."""
        with self._lock:
            policy = self._policy
            if policy is None:
                return []
            done = [self._commit(policy, d) for d in policy.due_auto_checkouts(self.clock.now_us())]
        return [d for d in done if d.outcome is not Outcome.FAULT]

    # ------------------------------------------------------------------ threads

    def liveness(self) -> dict[str, float]:
        """Monotonic time of each thread's last loop iteration, for a watchdog."""
        alive = dict(self._liveness)
        alive["uplink"] = self.uplink.last_iteration
        return alive

    def start(self) -> None:
        self._stop.clear()
        self.uplink.start()
        for name, target in (("reader", self._reader_loop), ("ticker", self._ticker_loop)):
            thread = threading.Thread(
                target=self._guarded(name, target), name=f"{name}-{self.device_id}", daemon=True
            )
            self._threads.append(thread)
            thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout)
        self._threads.clear()
        self.uplink.stop(timeout)
        self.reader.close()
        self.outbox.close()

    def _guarded(self, name: str, loop: Callable[[], None]) -> Callable[[], None]:
        """Run one loop iteration after another; an unexpected error is logged, not fatal."""

        def run() -> None:
            while not self._stop.is_set():
                self._liveness[name] = self.clock.monotonic()
                try:
                    loop()
                except Exception:
                    log.exception("%s loop of %s failed; continuing", name, self.device_id)
                    self._stop.wait(1.0)

        return run

    def _reader_loop(self) -> None:
        last_state = self.reader.state
        while not self._stop.is_set():
            self._liveness["reader"] = self.clock.monotonic()
            try:
                uid = self.reader.poll(self.poll_timeout_s)
            except GatewayError as exc:
                log.warning("%s: reader: %s", self.device_id, exc)
                uid = None
                self._stop.wait(self.poll_timeout_s)
            state = self.reader.state
            if state is not last_state:
                log.warning("%s: reader %s -> %s", self.device_id, last_state, state)
                if state is ReaderState.FAULT:
                    self.feedback.show(Outcome.FAULT, MSG_READER_FAULT)
                last_state = state
            if uid is not None:
                self.handle_tap(uid)

    def _ticker_loop(self) -> None:
        next_prune = self.clock.monotonic()
        while not self._stop.is_set():
            self._liveness["ticker"] = self.clock.monotonic()
            self.run_auto_checkouts()
            if self.clock.monotonic() >= next_prune:
                next_prune = self.clock.monotonic() + self.prune_every_s
                pruned = self.outbox.prune_acked()
                if pruned:
                    log.info("%s: pruned %d acknowledged events", self.device_id, pruned)
            self._stop.wait(self.tick_s)
