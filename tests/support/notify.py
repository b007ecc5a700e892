"""Real far ends for the notification tests: a group-robot webhook receiver (http.server on a
free port, told to fail its first N requests) and an SMTP server (aiosmtpd) that keeps what it
receives, each noting the time of receipt."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from aiosmtpd.controller import Controller
from sqlalchemy import text

from cloud_ingest.db import Database


@dataclass
class Hook:
    """One request the webhook receiver took."""

    at: float  # time.time() on receipt
    path: str
    query: dict[str, list[str]]
    body: dict[str, Any]
    status: int


@dataclass
class Receiver:
    """A WeCom/DingTalk-style robot: answers {"errcode": 0} unless told to fail."""

    url: str = ""
    fail_first: int = 0  # answer HTTP 500 to this many requests, then succeed
    errcode: int = 0  # answer HTTP 200 with this errcode (non-zero: a refusal)
    hooks: list[Hook] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def delivered(self) -> list[Hook]:
        with self.lock:
            return [h for h in self.hooks if h.status == 200 and not self.errcode]


@contextlib.contextmanager
def webhook_receiver(fail_first: int = 0) -> Iterator[Receiver]:
    receiver = Receiver(fail_first=fail_first)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            body = json.loads(self.rfile.read(length) or b"{}")
            parts = urlsplit(self.path)
            with receiver.lock:
                failing = receiver.fail_first > 0
                if failing:
                    receiver.fail_first -= 1
                status = 500 if failing else 200
                receiver.hooks.append(
                    Hook(time.time(), parts.path, parse_qs(parts.query), body, status)
                )
            answer = {"errcode": receiver.errcode, "errmsg": "ok" if not receiver.errcode else "x"}
            data = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}/cgi-bin/webhook/send?key=test"
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@dataclass
class Mail:
    at: float
    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage

    @property
    def text(self) -> str:
        body = self.message.get_body(("plain",))
        assert body is not None
        return str(body.get_content()).replace("\r\n", "\n")  # SMTP lines end in CRLF


@dataclass
class Mailbox:
    host: str
    port: int
    mails: list[Mail] = field(default_factory=list)
    refuse_first: int = 0  # answer 451 to this many messages, then take them


class _Handler:
    def __init__(self, box: Mailbox) -> None:
        self.box = box

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.box.refuse_first > 0:
            self.box.refuse_first -= 1
            return "451 4.3.0 try again later"
        msg = message_from_bytes(envelope.content, policy=policy.default)
        assert isinstance(msg, EmailMessage)
        self.box.mails.append(Mail(time.time(), envelope.mail_from, list(envelope.rcpt_tos), msg))
        return "250 OK"


@contextlib.contextmanager
def smtp_server() -> Iterator[Mailbox]:
    """aiosmtpd on a free port of 127.0.0.1 (plain SMTP: the test speaks no STARTTLS)."""
    # aiosmtpd checks its own start by connecting to the port it was given, so it needs a
    # number: one the kernel just handed out.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    box = Mailbox("127.0.0.1", port)
    controller = Controller(_Handler(box), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield box
    finally:
        controller.stop()


def insert_alert(
    db: Database,
    kind: str,
    subject: str,
    area_path: str,
    *,
    site_id: str | None = None,
    person_id: str | None = None,
    at_us: int = 1_700_000_000_000_000,
    detail_zh: str = "",
    detail_en: str = "",
) -> int:
    """An alert row as the alert engine raises it (for store tests on both backends)."""
    with db.write() as conn:
        return int(
            conn.execute(
                text(
                    "INSERT INTO alerts (kind, subject, site_id, person_id, area_path, opened_at,"
                    " last_seen_at, detail_zh, detail_en) VALUES (:kind, :subject, :site,"
                    " :person, :area, :at, :at, :zh, :en) RETURNING id"
                ),
                {
                    "kind": kind, "subject": subject, "site": site_id, "person": person_id,
                    "area": area_path, "at": at_us, "zh": detail_zh, "en": detail_en,
                },
            ).scalar_one()
        )  # fmt: skip
