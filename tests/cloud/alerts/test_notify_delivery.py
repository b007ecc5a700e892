"""Notifications end to end below the console: the real alert engine raises, the notifier (its
own thread, real clock) sends to a real webhook receiver and a real SMTP server, retries what
failed, and logs every attempt; two consoles' notifiers deliver each message once.

SQLite only: the alert engine's store opens an SQLite file until its conversion lands (the
notification tables themselves run on both backends in test_notify_store.py)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from cloud_ingest.alerts.engine import AlertEngine
from cloud_ingest.alerts.models import Kind
from cloud_ingest.alerts.notify import NotifySettings, open_notifier
from cloud_ingest.alerts.notify.notifier import Notifier
from cloud_ingest.alerts.notify.settings import SmtpSettings
from cloud_ingest.alerts.notify.store import NotifyStore
from tests.support.alerts import DAY, UsClock, local_us, make_engine
from tests.support.ingest import wait_for, write_registry
from tests.support.notify import Mailbox, Receiver, smtp_server, webhook_receiver
from warmcard.timestamps import now_us

T0 = local_us(2024, 5, 6, 10)
OPENED_LOCAL = "2024-05-07 12:24:00"  # T0 + 1.1 days in Dali (04:24 UTC)


@dataclass
class World:
    engine: AlertEngine
    clock: UsClock
    ids: dict[str, str]
    tmp: Path
    hook: Receiver
    mail: Mailbox
    notifiers: list[Notifier]

    def notifier(self, holder: str = "console-1", **settings: object) -> Notifier:
        smtp = SmtpSettings(host=self.mail.host, port=self.mail.port, starttls=False)
        smtp = smtp.model_copy(update={"from_address": "warmcard@example.cn"})
        n = open_notifier(
            NotifySettings(
                console_url="https://console.example", smtp=smtp,
                **settings,  # type: ignore[arg-type]
            ),
            self.tmp / "alerts.sqlite3", self.engine.registry, holder=holder, clock=now_us,
        )  # fmt: skip
        self.notifiers.append(n)
        return n

    def add_targets(self, store: NotifyStore, area: str, secret: str | None = None) -> None:
        store.add_target(
            area, "webhook", self.hook.url, secret=secret, kinds=(), label="", created_by="a",
            now_us=now_us(),
        )  # fmt: skip
        store.add_target(
            area, "email", "wang@example.cn, li@example.cn", secret=None, kinds=[Kind.VISIT_DUE],
            label="", created_by="a", now_us=now_us(),
        )  # fmt: skip

    def raise_visit_due(self) -> float:
        """P0001 (site A, lives alone) unseen for 1.1 days: the engine opens a visit-due alert;
        returns the wall time the alert was committed."""
        self.engine.store.set_flags([("P0001", "lives_alone", True)], T0)
        self.clock.t = T0 + int(1.1 * DAY)
        self.engine.tick()
        return time.time()


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    ids = write_registry(tmp_path, "nt")
    clock = UsClock(T0)
    engine, _, registry = make_engine(tmp_path, ids, clock, visit_due_days={"lives_alone": 1})
    with webhook_receiver() as hook, smtp_server() as mail:
        w = World(engine, clock, ids, tmp_path, hook, mail, [])
        yield w
        for n in w.notifiers:
            n.stop()
    engine.store.close()
    registry.close()


def test_an_alert_reaches_the_robot_and_the_mailbox_in_chinese_with_names_and_local_time(
    world: World,
) -> None:
    notifier = world.notifier()  # the defaults: poll every 1 s
    world.add_targets(notifier.store, "dali/eryuan")  # site A's county
    notifier.start()
    opened = world.raise_visit_due()
    hook = wait_for(lambda: world.hook.delivered(), timeout=10)[0]
    mail = wait_for(lambda: world.mail.mails, timeout=10)[0]
    latency = {"webhook": [hook.at - opened], "email": [mail.at - opened]}
    # More alerts at moments unrelated to the notifier's 1 s poll: the spread of the latency.
    for i in range(2, 7):
        time.sleep(0.37 * i)
        world.engine.store.set_flags([(f"P{i:04d}", "lives_alone", True)], T0)
        world.engine.tick()
        opened_i = time.time()
        wait_for(lambda: min(len(world.hook.delivered()), len(world.mail.mails)) >= i)  # noqa: B023
        latency["webhook"].append(world.hook.delivered()[i - 1].at - opened_i)
        latency["email"].append(world.mail.mails[i - 1].at - opened_i)
    for channel, values in latency.items():
        ms = sorted(int(1000 * v) for v in values)
        print(f"\nalert -> {channel} receipt, ms (poll_s=1.0): {ms}, median {ms[len(ms) // 2]}")
        assert ms[-1] < 2500
    assert hook.body["msgtype"] == "text"
    content = hook.body["text"]["content"]
    for text in (
        "【温馨卡告警】需探访 Visit due",
        "长者1",
        "喜洲幸福小院",
        OPENED_LOCAL,
        "北京时间",
    ):
        assert text in content, (text, content)
    assert f"https://console.example/alerts?kind=visit_due&site={world.ids['site_a']}" in content
    assert "P0001" not in content  # the name, not the pseudonymous id
    assert sorted(mail.rcpt_tos) == ["li@example.cn", "wang@example.cn"]
    assert mail.message["Subject"] == "【温馨卡告警】需探访 · 喜洲幸福小院"
    assert mail.text.strip() == content.strip()
    log = wait_for(lambda: len(notifier.store.log([""])) == 12 and notifier.store.log([""]))
    assert {(r.channel, r.status, r.attempt) for r in log} == {
        ("webhook", "sent", 1),
        ("email", "sent", 1),
    }


def test_failures_are_retried_with_backoff_then_given_up_and_every_attempt_logged(
    world: World,
) -> None:
    world.hook.fail_first = 2  # HTTP 500 twice, then 200
    world.mail.refuse_first = 1  # 451 once, then taken
    notifier = world.notifier(poll_s=0.1, retry_s=[0.3, 0.6, 0.9])
    world.add_targets(notifier.store, world.engine.area_of(world.ids["site_a"]))
    notifier.start()
    opened = world.raise_visit_due()
    wait_for(lambda: world.hook.delivered() and world.mail.mails, timeout=15)
    hooks = world.hook.hooks
    assert [h.status for h in hooks] == [500, 500, 200]
    gaps = [hooks[i + 1].at - hooks[i].at for i in range(2)]
    assert 0.3 <= gaps[0] < 0.9 and 0.6 <= gaps[1] < 1.3, gaps  # the schedule, not a spin
    print(f"\nwebhook delivered {hooks[-1].at - opened:.2f} s after the alert (2 retries)")
    log = wait_for(lambda: len(notifier.store.log([""])) == 5 and notifier.store.log([""]))
    web = sorted((r.attempt, r.status, r.error[:17]) for r in log if r.channel == "webhook")
    assert web == [
        (1, "error", "webhook answered "),
        (2, "error", "webhook answered "),
        (3, "sent", ""),
    ]
    mails = sorted((r.attempt, r.status, r.error[:8]) for r in log if r.channel == "email")
    assert mails == [(1, "error", "SMTP 451"), (2, "sent", "")]
    # A robot that keeps refusing (errcode ≠ 0): four attempts, then failed.
    world.hook.errcode = 310000
    world.clock.t += DAY
    world.engine.store.set_flags([("P0002", "lives_alone", True)], world.clock.t - 2 * DAY)
    world.engine.tick()
    failed = wait_for(
        lambda: [r for r in notifier.store.log([""]) if r.delivery_status == "failed"], timeout=15
    )
    assert [r.attempt for r in failed] == [4, 3, 2, 1]
    assert "errcode 310000" in failed[0].error


def test_a_signed_robot_gets_dingtalks_timestamp_and_sign(world: World) -> None:
    notifier = world.notifier(poll_s=0.1)
    world.add_targets(notifier.store, "dali", secret="SEC-test-secret")
    notifier.start()
    world.raise_visit_due()
    hook = wait_for(lambda: world.hook.delivered(), timeout=10)[0]
    stamp, sign = hook.query["timestamp"][0], hook.query["sign"][0]
    assert abs(int(stamp) - time.time() * 1000) < 10_000
    digest = hmac.new(b"SEC-test-secret", f"{stamp}\nSEC-test-secret".encode(), hashlib.sha256)
    assert sign == base64.b64encode(digest.digest()).decode()
    assert hook.query["key"] == ["test"]


def test_two_consoles_deliver_each_message_once(world: World) -> None:
    first = world.notifier("console-1", poll_s=0.05)
    second = world.notifier("console-2", poll_s=0.05)
    assert first.batch == 3  # lease 120 s / (2 × the 20 s SMTP timeout): 20 deliveries, 7 batches
    world.add_targets(first.store, "dali")
    first.start()
    second.start()
    world.engine.store.set_flags(
        [(f"P{i:04d}", "lives_alone", True) for i in range(1, 11)], T0
    )  # fmt: skip
    world.clock.t = T0 + int(1.1 * DAY)
    world.engine.tick()
    wait_for(lambda: len(world.mail.mails) == 10 and len(world.hook.delivered()) == 10, timeout=20)
    time.sleep(0.5)  # anything sent twice would arrive by now
    assert len(world.hook.hooks) == 10 and len(world.mail.mails) == 10
    people = sorted(h.body["text"]["content"].split("对象 Person：")[1].split("\n")[0]
                    for h in world.hook.hooks)  # fmt: skip
    assert people == sorted(f"长者{i}" for i in range(1, 11))
    holders = {r.holder for r in first.store.log([""])}
    assert first.sent + second.sent == 20 and holders <= {"console-1", "console-2"}
