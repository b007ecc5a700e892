"""The MQTT uplink: sends the outbox to the broker (MQTT 5, QoS 1), heartbeats, receives downlink.

An event leaves the outbox only on a PUBACK with a success reason code, and not on 0x10 "no
matching subscribers": that success code means the broker delivered the event to nobody. It
happens when ingest's subscription is missing, e.g. after a broker restart, because Mosquitto
2.0 does not restore shared subscriptions from its persistence file; such events stay pending
and are offered again a little later. Each connection uses a
fresh paho client with a clean start, and after a reconnect everything not acknowledged is sent
again from the outbox: paho's own re-sending of in-flight messages is thereby never relied on,
and a duplicate is harmless downstream (points are idempotent) while a loss is not.
"""

from __future__ import annotations

import logging
import queue
import random
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode

import warmcard
from firmware_gateway.clock import Clock
from firmware_gateway.errors import GatewayError
from firmware_gateway.outbox import Outbox
from firmware_gateway.roster_parts import RosterParts
from warmcard.contract import (
    DeviceConfig,
    DeviceStatus,
    ReaderState,
    ResendCommand,
    Roster,
    command_topic,
    config_topic,
    events_topic,
    parse_model,
    roster_parts_filter,
    roster_topic,
    status_topic,
)
from warmcard.downlink_commands import EraseCommand, parse_command
from warmcard.rejections import InvalidPayload, Reason
from warmcard.settings import MqttSettings
from warmcard.timestamps import format_ts

log = logging.getLogger("warmcard.gateway.uplink")

SOFTWARE = f"warmcard/{warmcard.__version__}"


# A success code that means "delivered to nobody" (MQTT 5, 3.4.2.1): not an acknowledgement.
NO_MATCHING_SUBSCRIBERS = 0x10


@dataclass(frozen=True)
class UplinkTiming:
    """Knobs of the uplink; tests shorten them."""

    window: int = 50  # events published and not yet acknowledged, at most
    retry_rejected_s: float = 60.0  # refused events are offered again this often
    backoff_min_s: float = 1.0
    backoff_max_s: float = 60.0
    connack_timeout_s: float = 10.0
    idle_wait_s: float = 1.0  # longest sleep between checks when nothing wakes the loop
    drain_s: float = 2.0  # on stop, wait this long for outstanding PUBACKs
    no_subscriber_retry_s: float = 5.0  # after a 0x10 PUBACK, wait this long before resending


@dataclass
class UplinkStats:
    connects: int = 0
    published: int = 0
    acked: int = 0
    rejected: int = 0
    no_subscribers: int = 0  # PUBACKs with 0x10: delivered to nobody, so kept and resent
    heartbeats: int = 0
    bad_downlink: int = 0
    last_reject: str | None = None
    resend_requests: int = 0
    resend_events: int = 0  # acknowledged events put back in line by resend commands
    erase_requests: int = 0
    erased_events: int = 0  # outbox events pseudonymised by erase commands


class Uplink:
    """Owns the broker connection in its own thread, with reconnect, backoff and jitter."""

    def __init__(
        self,
        device_id: str,
        mqtt_settings: MqttSettings,
        outbox: Outbox,
        clock: Clock,
        *,
        rng: random.Random | None = None,
        heartbeat_s: float = 30.0,
        timing: UplinkTiming | None = None,
        on_config: Callable[[DeviceConfig], None] | None = None,
        on_roster: Callable[[Roster], None] | None = None,
        on_erase: Callable[[EraseCommand], None] | None = None,
        reader_state: Callable[[], ReaderState | None] | None = None,
        software: str = SOFTWARE,
    ) -> None:
        self.device_id = device_id
        self.mqtt = mqtt_settings
        self.outbox = outbox
        self.clock = clock
        self.rng = rng or random.Random()
        self.heartbeat_s = heartbeat_s
        self.timing = timing or UplinkTiming()
        self.on_config = on_config
        self.on_roster = on_roster
        self.on_erase = on_erase
        self.reader_state = reader_state
        self.software = software
        self.stats = UplinkStats()
        self._hold_until = 0.0  # time.monotonic() before which no event is (re)published
        self.last_iteration = clock.monotonic()
        self._started = clock.monotonic()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._connected = threading.Event()
        self._thread: threading.Thread | None = None
        self._recent_requests: list[str] = []  # a QoS 1 command may arrive twice
        # Erase commands applied since start, listed in every heartbeat: the console sends an
        # erase again until it sees its id here (docs/protocol.md, "EraseCommand").
        self._erased: list[str] = []
        self._beat_now = threading.Event()
        self._roster_parts = RosterParts()  # a large roster arrives split (v1.2)
        outbox.add_listener(self.wake)

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._run, name=f"uplink-{self.device_id}", daemon=True
        )
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Send what can be sent quickly, publish 'offline', disconnect cleanly."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def wake(self) -> None:
        """Something changed (a new event was committed): look at the outbox now."""
        self._wake.set()

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    def wait_connected(self, timeout: float) -> bool:
        return self._connected.wait(timeout)

    def backoff_delay(self, attempt: int) -> float:
        """Exponential backoff with 'equal jitter': half fixed, half random, so kiosks that lost
        the same broker at the same moment do not all come back in the same second."""
        cap = min(self.timing.backoff_max_s, self.timing.backoff_min_s * 2.0 ** min(attempt, 30))
        return cap / 2 + self.rng.uniform(0, cap / 2)

    # ------------------------------------------------------------------ status

    def build_status(self) -> DeviceStatus:
        """The heartbeat payload; outbox trouble shows as missing figures, not a missing beat."""
        figures: dict[str, object] = {}
        try:
            figures["outbox_depth"] = self.outbox.depth()
            figures["last_seq"] = self.outbox.last_seq()
            figures["outbox_rejected"] = self.outbox.rejected_total()
            figures["disk_free_bytes"] = self.outbox.disk_free_bytes()
        except (GatewayError, OSError) as exc:
            log.error("heartbeat without outbox figures: %s", exc)
        return DeviceStatus.model_validate(
            {
                "device_id": self.device_id,
                "state": "online",
                "ts": format_ts(self.clock.now_us()),
                "uptime_s": round(self.clock.monotonic() - self._started, 1),
                "reader": self.reader_state() if self.reader_state else None,
                "clock_synced": self.clock.synced(),
                "software": self.software,
                "last_reject": self.stats.last_reject,
                "erased": list(self._erased) or None,
                **figures,
            }
        )

    # ------------------------------------------------------------------ connection loop

    def _run(self) -> None:
        attempt = 0
        while not self._stop.is_set():
            self.last_iteration = self.clock.monotonic()
            try:
                established = self._session()
            except Exception:  # never let the uplink thread die: log, back off, retry
                log.exception("uplink session failed")
                established = False
            if self._stop.is_set():
                break
            attempt = 0 if established else attempt + 1
            delay = self.backoff_delay(attempt)
            log.info("reconnecting to %s:%d in %.1f s", self.mqtt.host, self.mqtt.port, delay)
            # Wait in short slices, so a watchdog sees the thread alive during a long backoff.
            resume = time.monotonic() + delay
            while not self._stop.wait(min(1.0, max(0.0, resume - time.monotonic()))):
                self.last_iteration = self.clock.monotonic()
                if time.monotonic() >= resume:
                    break

    def _new_client(self) -> mqtt.Client:
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=self.device_id,
            protocol=mqtt.MQTTv5,
            # We reconnect ourselves, with a fresh client: see the module docstring.
            reconnect_on_failure=False,
        )
        client.max_inflight_messages_set(self.timing.window + 5)  # + room for heartbeats
        if self.mqtt.username:
            password = self.mqtt.password.get_secret_value() if self.mqtt.password else None
            client.username_pw_set(self.mqtt.username, password)
        if self.mqtt.tls:
            client.tls_set(
                ca_certs=str(self.mqtt.ca_file) if self.mqtt.ca_file else None,
                certfile=str(self.mqtt.cert_file) if self.mqtt.cert_file else None,
                keyfile=str(self.mqtt.key_file) if self.mqtt.key_file else None,
                tls_version=ssl.PROTOCOL_TLS_CLIENT,
            )
        offline = DeviceStatus(device_id=self.device_id, state="offline")
        client.will_set(status_topic(self.device_id), offline.to_bytes(), qos=1, retain=True)
        return client

    def _session(self) -> bool:
        """One connection, from connect to loss or stop; returns whether it was established."""
        client = self._new_client()
        acks: queue.SimpleQueue[tuple[int, ReasonCode]] = queue.SimpleQueue()
        connack: list[ReasonCode] = []
        answered = threading.Event()
        lost = threading.Event()

        def on_connect(_c: mqtt.Client, _u: object, _f: object, rc: ReasonCode, _p: object) -> None:
            connack.append(rc)
            answered.set()

        def on_disconnect(
            _c: mqtt.Client, _u: object, _f: object, rc: ReasonCode, _p: object
        ) -> None:
            lost.set()
            answered.set()
            self._connected.clear()
            self._wake.set()

        def on_publish(_c: mqtt.Client, _u: object, mid: int, rc: ReasonCode, _p: object) -> None:
            # paho calls this holding its own locks: only hand over to the uplink thread.
            acks.put((mid, rc))
            self._wake.set()

        def on_message(_c: mqtt.Client, _u: object, message: mqtt.MQTTMessage) -> None:
            self._on_downlink(message.topic, bytes(message.payload))

        client.on_connect = on_connect
        client.on_disconnect = on_disconnect
        client.on_publish = on_publish
        client.on_message = on_message
        try:
            client.connect(self.mqtt.host, self.mqtt.port, keepalive=self.mqtt.keepalive_s)
        except (OSError, ValueError) as exc:
            log.warning("cannot reach broker %s:%d: %s", self.mqtt.host, self.mqtt.port, exc)
            return False
        client.loop_start()
        try:
            if not answered.wait(self.timing.connack_timeout_s) or lost.is_set() or not connack:
                log.warning("broker did not accept the connection in time")
                return False
            if connack[0].is_failure:
                log.error("broker refused the connection: %s", connack[0])
                return False
            self.stats.connects += 1
            log.info("connected to %s:%d as %s", self.mqtt.host, self.mqtt.port, self.device_id)
            self._connected.set()
            self._serve(client, acks, lost)
            return True
        finally:
            self._connected.clear()
            client.disconnect()
            client.loop_stop()

    def _serve(
        self,
        client: mqtt.Client,
        acks: queue.SimpleQueue[tuple[int, ReasonCode]],
        lost: threading.Event,
    ) -> None:
        client.subscribe(
            [
                (config_topic(self.device_id), 1),
                (roster_topic(self.device_id), 1),
                (roster_parts_filter(self.device_id), 1),
                (command_topic(self.device_id), 1),
            ]
        )
        # A reconnect is a good moment to offer refused events again (the ACL may be fixed).
        self.outbox.retry_rejected()
        inflight: dict[int, int] = {}  # mid -> seq
        topic = events_topic(self.device_id)
        next_heartbeat = self.clock.monotonic()
        next_retry = self.clock.monotonic() + self.timing.retry_rejected_s
        while not lost.is_set():
            now = self.clock.monotonic()
            self.last_iteration = now
            self._wake.clear()
            self._settle(acks, inflight)
            if self._stop.is_set():
                self._drain(client, acks, inflight, lost)
                return
            if now >= next_retry:
                next_retry = now + self.timing.retry_rejected_s
                if self.outbox.retry_rejected():
                    log.info("offering refused events again")
            room = self.timing.window - len(inflight)
            if room > 0 and time.monotonic() >= self._hold_until:
                sending = set(inflight.values())
                for event in self.outbox.pending(self.timing.window + len(inflight)):
                    if room <= 0:
                        break
                    if event.seq in sending:
                        continue
                    info = client.publish(topic, event.to_bytes(), qos=1)
                    if info.rc != mqtt.MQTT_ERR_SUCCESS:
                        log.warning("publish of seq %d failed: %s", event.seq, info.rc)
                        return
                    inflight[info.mid] = event.seq
                    self.stats.published += 1
                    room -= 1
            if now >= next_heartbeat or self._beat_now.is_set():
                self._beat_now.clear()
                next_heartbeat = now + self.heartbeat_s
                self._heartbeat(client)
            self._wake.wait(min(self.timing.idle_wait_s, max(0.0, next_heartbeat - now)))

    def _settle(
        self, acks: queue.SimpleQueue[tuple[int, ReasonCode]], inflight: dict[int, int]
    ) -> None:
        """Apply the PUBACKs received so far: success leaves the outbox, failure is kept."""
        done: list[int] = []
        while True:
            try:
                mid, rc = acks.get_nowait()
            except queue.Empty:
                break
            seq = inflight.pop(mid, None)
            if seq is None:
                continue  # a heartbeat or offline status
            if rc.value == NO_MATCHING_SUBSCRIBERS:
                self.stats.no_subscribers += 1
                self._hold_until = time.monotonic() + self.timing.no_subscriber_retry_s
                log.warning("seq %d reached no subscriber (ingest away?); kept, resent later", seq)
                continue
            if rc.value < 0x80:
                done.append(seq)
                continue
            text = f"seq {seq}: 0x{rc.value:02X} {rc}"
            log.error("broker refused event %s; kept and retried later", text)
            self.outbox.mark_rejected(seq, rc.value, str(rc))
            self.stats.rejected += 1
            self.stats.last_reject = text
        if done:
            self.stats.acked += self.outbox.mark_acked(done)

    def _drain(
        self,
        client: mqtt.Client,
        acks: queue.SimpleQueue[tuple[int, ReasonCode]],
        inflight: dict[int, int],
        lost: threading.Event,
    ) -> None:
        """On stop: collect outstanding PUBACKs briefly, then say 'offline' ourselves (a clean
        DISCONNECT suppresses the will)."""
        deadline = self.clock.monotonic() + self.timing.drain_s
        while inflight and not lost.is_set() and self.clock.monotonic() < deadline:
            self._wake.wait(0.05)
            self._wake.clear()
            self._settle(acks, inflight)
        if not lost.is_set():
            offline = DeviceStatus(
                device_id=self.device_id, state="offline", ts=format_ts(self.clock.now_us())
            )
            info = client.publish(
                status_topic(self.device_id), offline.to_bytes(), qos=1, retain=True
            )
            if info.rc == mqtt.MQTT_ERR_SUCCESS:
                info.wait_for_publish(self.timing.drain_s)

    def _heartbeat(self, client: mqtt.Client) -> None:
        status = self.build_status()
        client.publish(status_topic(self.device_id), status.to_bytes(), qos=1, retain=True)
        self.stats.heartbeats += 1

    # ------------------------------------------------------------------ downlink

    def _on_resend(self, command: ResendCommand) -> None:
        """Put an acknowledged range back in line (reconciliation found it missing upstream)."""
        if command.device_id != self.device_id:
            raise InvalidPayload(Reason.DEVICE_MISMATCH, f"command is for {command.device_id}")
        if command.request_id in self._recent_requests:
            log.info("resend %s already done; ignored", command.request_id)
            return
        self._recent_requests = [*self._recent_requests[-99:], command.request_id]
        # The contract bounds the range (MAX_RESEND_RANGE); only retained events can be re-sent:
        # events pruned after the outbox retention are gone from this kiosk.
        n = self.outbox.resend(command.from_seq, command.to_seq)
        self.stats.resend_requests += 1
        self.stats.resend_events += n
        log.warning(
            "resend %s: seq %d-%d requested, %d acknowledged event(s) queued again",
            command.request_id,
            command.from_seq,
            command.to_seq,
            n,
        )
        self.wake()

    def _on_erase(self, command: EraseCommand) -> None:
        """Pseudonymise the erased person's taps in the outbox, then let the kiosk forget them.

        Done again when the command comes again (the console repeats it until the heartbeat
        lists its id): rewriting is idempotent, and a kiosk restarted since has forgotten the id.
        """
        if command.device_id != self.device_id:
            raise InvalidPayload(Reason.DEVICE_MISMATCH, f"command is for {command.device_id}")
        n = self.outbox.erase(command)
        if self.on_erase is not None:
            self.on_erase(command)
        self.stats.erase_requests += 1
        self.stats.erased_events += n
        if command.request_id not in self._erased:
            self._erased = [*self._erased[-15:], command.request_id]
        log.warning("erase %s: %d event(s) pseudonymised", command.request_id, n)
        self._beat_now.set()  # acknowledge at once
        self.wake()

    def _on_downlink(self, topic: str, payload: bytes) -> None:
        """Validate config, roster and commands; a bad message is logged and ignored."""
        if not payload:
            return  # a retained message being cleared
        try:
            if topic == config_topic(self.device_id):
                config = parse_model(DeviceConfig, payload)
                if config.device_id != self.device_id:
                    raise InvalidPayload(
                        Reason.DEVICE_MISMATCH, f"config is for device {config.device_id}"
                    )
                if self.on_config is not None:
                    self.on_config(config)
            elif topic.startswith(roster_topic(self.device_id)):
                roster = parse_model(Roster, payload)
                suffix = topic[len(roster_topic(self.device_id)) :]
                if not suffix:
                    whole = self._roster_parts.head(roster)
                elif suffix[:1] == "/" and suffix[1:].isdigit():
                    whole = self._roster_parts.part(roster, int(suffix[1:]))
                else:
                    raise InvalidPayload(Reason.BAD_TOPIC, f"not a roster part topic: {topic}")
                if whole is not None and self.on_roster is not None:
                    self.on_roster(whole)
            elif topic == command_topic(self.device_id):
                command = parse_command(payload)
                if isinstance(command, EraseCommand):
                    self._on_erase(command)
                else:
                    self._on_resend(command)
        except InvalidPayload as exc:
            self.stats.bad_downlink += 1
            log.error("ignoring invalid message on %s: %s", topic, exc)
        except Exception:
            self.stats.bad_downlink += 1
            log.exception("ignoring message on %s that could not be applied", topic)
