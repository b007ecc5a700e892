"""The two ways a notification leaves: a group robot's webhook and e-mail over SMTP.

Each `send` returns when the far end accepted the message, or raises DeliveryError saying why
(the notifier retries). Library errors are translated here, at the boundary.

- **Webhook.** WeCom (企业微信) and DingTalk (钉钉) group robots take the same text message,
  `{"msgtype": "text", "text": {"content": ...}}`, and answer HTTP 200 with `errcode` 0 when
  they took it; a non-zero errcode (bad key, rate limit 20/min, keyword missing) is a failure.
  With a signing secret (DingTalk "加签"), `timestamp` and `sign` go in the query string:
  sign = base64(HMAC-SHA256(secret, f"{timestamp}\n{secret}")).
- **E-mail.** One message to every address of the target, plain text in UTF-8.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import smtplib
import ssl
from collections.abc import Callable
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from urllib.parse import quote

import httpx

from cloud_ingest.alerts.notify.settings import SmtpSettings
from cloud_ingest.errors import DeliveryError

MAX_ERROR = 300  # characters of a far end's answer kept in the log


def signed_url(url: str, secret: str, now_ms: int) -> str:
    """The robot's URL with DingTalk's timestamp and signature."""
    digest = hmac.new(secret.encode(), f"{now_ms}\n{secret}".encode(), hashlib.sha256).digest()
    sign = quote(base64.b64encode(digest).decode(), safe="")
    return f"{url}{'&' if '?' in url else '?'}timestamp={now_ms}&sign={sign}"


class WebhookSender:
    """POSTs text messages to group robots through the client it is given."""

    def __init__(self, client: httpx.Client, clock_ms: Callable[[], int]) -> None:
        self.client = client
        self.clock_ms = clock_ms

    def send(self, url: str, secret: str | None, content: str) -> None:
        target = signed_url(url, secret, self.clock_ms()) if secret else url
        payload = {"msgtype": "text", "text": {"content": content}}
        try:
            answer = self.client.post(target, json=payload)
        except httpx.HTTPError as exc:
            raise DeliveryError(f"webhook unreachable: {type(exc).__name__}: {exc}") from None
        if answer.status_code // 100 != 2:
            raise DeliveryError(f"webhook answered HTTP {answer.status_code}: {_short(answer)}")
        try:
            body = answer.json()
        except ValueError:
            return  # a robot-compatible receiver that answers 2xx without JSON took it
        if isinstance(body, dict) and body.get("errcode", 0) not in (0, "0"):
            raise DeliveryError(
                f"webhook refused: errcode {body.get('errcode')} {body.get('errmsg', '')}"[
                    :MAX_ERROR
                ]
            )


def _short(answer: httpx.Response) -> str:
    return answer.text[:MAX_ERROR].replace("\n", " ")


SmtpFactory = Callable[[str, int, float], smtplib.SMTP]


def _connect(host: str, port: int, timeout: float) -> smtplib.SMTP:
    return smtplib.SMTP(host, port, timeout=timeout)


class SmtpSender:
    """Sends plain-text e-mail through the `[notify.smtp]` server, one connection per message."""

    def __init__(self, settings: SmtpSettings, connect: SmtpFactory = _connect) -> None:
        self.settings = settings
        self.connect = connect

    @property
    def configured(self) -> bool:
        return bool(self.settings.host and self.settings.from_address)

    def send(self, recipients: list[str], subject: str, content: str) -> None:
        s = self.settings
        if not self.configured:
            raise DeliveryError("no SMTP server: set [notify.smtp] host and from in ingest.toml")
        msg = EmailMessage()
        msg["From"] = s.from_address
        msg["To"] = ", ".join(recipients)
        msg["Subject"] = subject
        msg["Date"] = formatdate(localtime=False)
        msg["Message-ID"] = make_msgid(domain=s.from_address.rpartition("@")[2] or None)
        msg.set_content(content, charset="utf-8")
        try:
            with self.connect(s.host, s.port, s.timeout_s) as smtp:
                if s.starttls:
                    smtp.starttls(context=ssl.create_default_context())
                password = s.password()
                if s.user and password is not None:
                    smtp.login(s.user, password)
                refused = smtp.send_message(msg)
        except smtplib.SMTPResponseException as exc:
            raw = exc.smtp_error
            detail = (raw.decode(errors="replace") if isinstance(raw, bytes) else raw)[:MAX_ERROR]
            raise DeliveryError(f"SMTP {exc.smtp_code}: {detail}") from None
        except (smtplib.SMTPException, OSError) as exc:
            raise DeliveryError(f"SMTP failed: {type(exc).__name__}: {exc}"[:MAX_ERROR]) from None
        if refused:
            raise DeliveryError(f"SMTP refused {', '.join(sorted(refused))}"[:MAX_ERROR])
