"""What a notification target may be: a robot's webhook URL, or up to 10 e-mail addresses, and
the alert kinds it takes. Checked before anything is saved; the message says what to fix."""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import urlsplit

from cloud_ingest.alerts.models import Kind
from cloud_ingest.errors import NotifyTargetError

MAX_ADDRESSES = 10
EMAIL_RE = re.compile(r"^[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9.-]{1,190}\.[A-Za-z]{2,24}$")
CHANNELS = ("webhook", "email")


def recipients(address: str) -> list[str]:
    """The addresses of an e-mail target, as saved (commas, semicolons or spaces between)."""
    return [a for a in re.split(r"[\s,;，；]+", address) if a]


def check(channel: str, address: str, secret: str, kinds: Iterable[str]) -> tuple[str, set[Kind]]:
    """The address as it will be saved and the kinds; NotifyTargetError naming what is wrong."""
    address = address.strip()
    if channel == "webhook":
        parts = urlsplit(address)
        if parts.scheme not in ("https", "http") or not parts.hostname or len(address) > 1000:
            raise NotifyTargetError(
                f"网址无效 webhook URL {address[:80]!r} must be http(s)://…, e.g. "
                "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=…"
            )
        if len(secret) > 200:
            raise NotifyTargetError("签名密钥过长 signing secret longer than 200 characters")
    elif channel == "email":
        found = recipients(address)
        bad = [a for a in found if not EMAIL_RE.fullmatch(a)]
        if not found or bad:
            raise NotifyTargetError(
                f"邮箱地址无效 invalid e-mail address {(bad or [address])[0][:80]!r}, "
                "e.g. wang@example.cn (several: separate with commas)"
            )
        if len(found) > MAX_ADDRESSES:
            raise NotifyTargetError(f"邮箱过多 at most {MAX_ADDRESSES} addresses per target")
        address = ", ".join(found)
    else:
        raise NotifyTargetError(f"未知方式 unknown channel {channel!r}; use webhook or email")
    try:
        return address, {Kind(k) for k in kinds if k}
    except ValueError:
        raise NotifyTargetError(f"未知告警类型 unknown alert kind in {sorted(kinds)!r}") from None
