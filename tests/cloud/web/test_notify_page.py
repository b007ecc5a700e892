# mypy: allow-untyped-defs
"""Notifications through the whole console: an area admin on a 390 px phone (headless Chromium)
adds a robot webhook for a courtyard and an e-mail target for the township, sends a test, then
a kiosk's reader fails (real Mosquitto, the console's real alert engine) and the alert reaches
the local webhook receiver and the local SMTP server in Chinese with the courtyard's name and
local time; the delivery log on the page shows both. Latency from the alert's opening to each
receipt is printed."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser

from cloud_ingest.alerts.models import Kind as AlertKind
from cloud_ingest.alerts.notify.settings import NotifySettings, SmtpSettings
from cloud_ingest.alerts.settings import AlertSettings
from cloud_ingest.console.roles import Role
from cloud_ingest.i18n import format_ts
from tests.cloud.web.test_console_phone import PHONE, phone_login
from tests.support.console import LiveConsole, add_user, live_console
from tests.support.ingest import TZ, wait_for
from tests.support.notify import Mailbox, Receiver, smtp_server, webhook_receiver
from warmcard.contract import DeviceStatus, ReaderState, status_topic

TOWNSHIP = "dali/dalishi/xizhou"


@pytest.fixture
def world(
    tmp_path, mosquitto, influxd, influx_db, topic_prefix
) -> Iterator[tuple[LiveConsole, Receiver, Mailbox]]:
    with webhook_receiver() as hook, smtp_server() as mail:
        smtp = SmtpSettings(host=mail.host, port=mail.port, starttls=False)
        notify = NotifySettings(
            console_url="https://console.example",
            smtp=smtp.model_copy(update={"from_address": "warmcard@example.cn"}),
        )  # the default poll (1 s): the latency printed is what a deployment sees
        with live_console(
            tmp_path, mosquitto, influxd, influx_db, topic_prefix,
            alerts=AlertSettings(evaluate_s=0.3), notify=notify,
        ) as running:  # fmt: skip
            yield running, hook, mail
            gate = running.ids["gate_a"]
            running.publisher.publish_raw(status_topic(gate), b"", retain=True)


def test_an_area_admin_sets_targets_and_an_alert_reaches_robot_and_mailbox(
    browser: Browser, world, shots
) -> None:
    console, hook, mail = world
    site, gate = console.ids["site_a"], console.ids["gate_a"]
    add_user(console.service.settings.console_db, "adm-a", Role.ADMIN, TOWNSHIP)
    page = phone_login(browser, console.url, "adm-a", "/alerts/notify")
    assert page.locator("#targets-empty").is_visible()
    # A robot for the courtyard (site A) and a mailbox for the whole township.
    form = page.locator("#add-target")
    form.locator("select[name=area]").select_option(f"{TOWNSHIP}/{site}")
    form.locator("select[name=channel]").select_option("webhook")
    form.locator("input[name=address]").fill(hook.url)
    form.locator("button").click()
    page.wait_for_selector("#targets")
    form.locator("select[name=area]").select_option(TOWNSHIP)
    form.locator("select[name=channel]").select_option("email")
    form.locator("input[name=address]").fill("wang@example.cn，li@example.cn")
    form.locator(f"input[value={AlertKind.READER_FAULT.value}]").check()
    form.locator("button").click()
    page.wait_for_selector("#targets tr[data-channel=email]")
    rows = page.locator("#targets tbody tr")
    assert rows.count() == 2
    email_row = page.locator("#targets tr[data-channel=email]").inner_text()
    assert "wang@example.cn, li@example.cn" in email_row and "读卡器故障" in email_row
    # A mistyped address is refused with a way back, and nothing is saved.
    form.locator("select[name=channel]").select_option("email")
    form.locator("input[name=address]").fill("wang-at-example")
    form.locator("button").click()
    assert "邮箱地址无效" in page.locator("p.error").inner_text()
    page.goto(console.url + "/alerts/notify")
    assert page.locator("#targets tbody tr").count() == 2
    # 发送测试: the robot gets a test message at once; the log says so.
    page.locator("#targets tr[data-channel=webhook] button.send-test").click()
    page.wait_for_selector("#test-queued")
    test_hook = wait_for(lambda: hook.delivered(), timeout=10)[0]
    content = test_hook.body["text"]["content"]
    assert "测试消息" in content and "的告警将这样送达" in content
    assert "dali/" not in content, content  # the area by its name, not its path
    page.reload()
    assert page.locator("#delivery-log tr[data-alert=''][data-status=sent]").count() == 1

    # The kiosk's reader fails: the console's alert engine opens reader_fault at site A.
    fault = DeviceStatus(device_id=gate, state="online", reader=ReaderState.FAULT)
    console.publisher.publish_raw(status_topic(gate), fault.to_bytes(), retain=True)
    store = console.service.console.alerts.store
    alert = wait_for(lambda: store.find([""], kinds=[AlertKind.READER_FAULT]), timeout=15)[0]
    got_hook = wait_for(lambda: len(hook.delivered()) == 2 and hook.delivered()[1], timeout=15)
    got_mail = wait_for(lambda: mail.mails, timeout=15)[0]
    opened_s = alert.opened_at / 1e6
    print(
        f"\nreader fault opened -> webhook receipt {1000 * (got_hook.at - opened_s):.0f} ms, "
        f"-> e-mail receipt {1000 * (got_mail.at - opened_s):.0f} ms (poll_s=1.0, real stack)"
    )
    content = got_hook.body["text"]["content"]
    local = format_ts(alert.opened_at, TZ, seconds=True)
    for text in ("读卡器故障", "喜洲幸福小院", gate, local, "北京时间", "https://console.example"):
        assert text in content, (text, content)
    assert sorted(got_mail.rcpt_tos) == ["li@example.cn", "wang@example.cn"]
    assert "读卡器故障" in str(got_mail.message["Subject"])
    assert local in got_mail.text and "喜洲幸福小院" in got_mail.text
    assert got_hook.at - opened_s < 3 and got_mail.at - opened_s < 3

    # The delivery log on the page: both, delivered at the first attempt, for this alert.
    page.reload()
    sent = page.locator(f"#delivery-log tr[data-alert='{alert.id}'][data-status=sent]")
    assert sorted(sent.nth(i).get_attribute("data-channel") or "" for i in range(sent.count())) == [
        "email",
        "webhook",
    ]
    page.screenshot(path=str(shots / "phone-notify.png"), full_page=True)
    scroll = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert max(scroll) <= PHONE["width"], scroll
    # Nothing went wrong on the page but the refused address (its 400, as the browser says it).
    errors: list[str] = page.errors  # type: ignore[attr-defined]
    assert f"400 {console.url}/alerts/notify/targets" in errors
    assert [e for e in errors if "400" not in e] == []

    # The console's health details count what it sent (the test message and the two above).
    assert console.service.console.health()["notify_sent"] == 3
    # A manager of the other township sees none of it; a viewer gets 403.
    other = phone_login(browser, console.url, "mgr-b", "/alerts/notify")
    assert other.locator("#targets-empty").is_visible() and other.locator("#log-empty").count()
    viewer = phone_login(browser, console.url, "view-a", "/alerts")
    assert viewer.locator("a[href='/alerts/notify']").count() == 0
    assert viewer.goto(console.url + "/alerts/notify").status == 403  # type: ignore[union-attr]
    for p in (page, other, viewer):
        p.context.close()
