"""Console wording and site-local time formatting."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from cloud_ingest import i18n
from warmcard import localtime
from warmcard.localtime import UnknownTimezone
from warmcard.timestamps import parse_ts


def test_zh_default_english_on_request() -> None:
    assert i18n.pick_lang(None) == "zh-CN"
    assert i18n.pick_lang("fr") == "zh-CN"
    assert i18n.pick_lang("en-US") == "en"
    assert i18n.pick_lang("EN") == "en"
    assert i18n.t("login") == "登录"
    assert i18n.t("login", "en") == "Log in"
    assert i18n.both("username") == "用户名 Username"
    assert i18n.both("not_seen_days", days=3) == "已 3 天未到院 Not seen for 3 days"
    with pytest.raises(KeyError):
        i18n.t("no_such_key")


def test_every_message_has_both_languages() -> None:
    for key, (zh, en) in i18n.MESSAGES.items():
        assert zh and en and zh != en, key


def test_wire_microseconds_shown_in_site_zone() -> None:
    ts = parse_ts("2024-05-01T04:30:05.123456Z")
    assert i18n.format_ts(ts) == "2024-05-01 12:30"
    assert i18n.format_ts(ts, seconds=True) == "2024-05-01 12:30:05"
    assert i18n.format_ts(ts, tz="UTC") == "2024-05-01 04:30"
    # Crossing midnight: 18:00 UTC is already the next day in Dali.
    late = datetime(2024, 4, 30, 18, 0, tzinfo=UTC)
    assert i18n.format_ts(late) == "2024-05-01 02:00"
    other = datetime(2024, 5, 1, 12, 0, tzinfo=timezone(timedelta(hours=-5)))
    assert i18n.format_ts(other) == "2024-05-02 01:00"
    with pytest.raises(ValueError, match="naive"):
        i18n.format_ts(datetime(2024, 5, 1, 12, 0))
    with pytest.raises(UnknownTimezone):
        i18n.format_ts(ts, tz="Asia/Dali")


def test_dates_months_and_ago() -> None:
    assert i18n.format_date(date(2024, 5, 1)) == "2024年5月1日"
    assert i18n.format_date(date(2024, 5, 1), "en") == "1 May 2024"
    assert i18n.format_month(2024, 12) == "2024年12月"
    assert i18n.format_month(2024, 12, "en") == "December 2024"
    assert i18n.format_ago(30) == "刚刚"
    assert i18n.format_ago(180, "en") == "3 min ago"
    assert i18n.format_ago(7200) == "2 小时前"
    assert i18n.format_ago(3 * 86400 + 5, "en") == "3 days ago"


def test_local_day_and_month_bounds_for_queries() -> None:
    start, end = localtime.day_bounds_us(date(2024, 5, 1))
    assert start == parse_ts("2024-04-30T16:00:00.000000Z")
    assert end - start == 86400 * 1_000_000
    m_start, m_end = localtime.month_bounds_us(2024, 12)
    assert m_start == parse_ts("2024-11-30T16:00:00.000000Z")
    assert m_end == parse_ts("2024-12-31T16:00:00.000000Z")
