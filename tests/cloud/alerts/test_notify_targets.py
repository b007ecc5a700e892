"""What a notification target may be: each refusal names what to fix, and nothing is kept."""

from __future__ import annotations

import pytest

from cloud_ingest.alerts.models import Kind
from cloud_ingest.alerts.notify.settings import NotifySettings
from cloud_ingest.alerts.notify.targets import check, recipients
from cloud_ingest.errors import NotifyTargetError

ROBOT = "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=abc"


def test_addresses_are_normalised_and_kinds_parsed() -> None:
    address, kinds = check("email", " wang@example.cn，li@example.cn; zhao@example.cn ", "", [])
    assert address == "wang@example.cn, li@example.cn, zhao@example.cn"
    assert recipients(address) == ["wang@example.cn", "li@example.cn", "zhao@example.cn"]
    assert kinds == set()
    assert check("webhook", ROBOT, "SEC1", ["reader_fault", "visit_due"]) == (
        ROBOT,
        {Kind.READER_FAULT, Kind.VISIT_DUE},
    )


@pytest.mark.parametrize(
    ("channel", "address", "kinds", "says"),
    [
        ("webhook", "qyapi.weixin.qq.com/send?key=1", [], "网址无效"),
        ("webhook", "ftp://robot.example/x", [], "网址无效"),
        ("email", "wang-at-example.cn", [], "邮箱地址无效 invalid e-mail address 'wang-at-example"),
        ("email", "", [], "邮箱地址无效"),
        ("email", ", ".join(f"u{i}@example.cn" for i in range(11)), [], "at most 10"),
        ("sms", "13800000000", [], "unknown channel 'sms'"),
        ("webhook", ROBOT, ["visit_overdue"], "unknown alert kind"),
    ],
)
def test_refusals_say_what_to_fix(channel: str, address: str, kinds: list[str], says: str) -> None:
    with pytest.raises(NotifyTargetError, match=says):
        check(channel, address, "", kinds)


def test_settings_refuse_a_bad_schedule_and_count_attempts() -> None:
    assert NotifySettings().max_attempts == 6
    with pytest.raises(ValueError, match="every retry wait must be > 0"):
        NotifySettings(retry_s=[5, 0])
    with pytest.raises(ValueError, match="console_url"):
        NotifySettings(console_url="console.example")
    assert NotifySettings(lease_s=120).smtp.from_address == ""
