"""The kiosk's on-site screen: one local page for Chromium in kiosk mode, fed by server-sent events.

`ScreenFeedback` is a feedback channel and a tiny stdlib HTTP server in a thread, bound to
127.0.0.1 (the names on the roster are personal data: nothing off the box may read them). The
page (kiosk/static/) needs no build step and no network: it opens an EventSource on /events and
renders `tap` and `status` events. stdlib rather than FastAPI/uvicorn: one client, three small
files and an event stream do not justify ~20 MB more RSS inside the kiosk's 60 MB budget.

When a staff card opens the list of today's elders (outcome `staff`), the page reads it from
`GET /staff/list` and records a meal by hand with `POST /staff/meal`, both answered by the
`StaffDesk` passed in (the running kiosk). Both need the header `X-Warmcard-Token` with the token
the page received in its event stream: a web page from elsewhere cannot read that stream, and
the custom header makes its browser ask first (CORS), which this server never allows.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import queue
import re
import secrets
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from typing import Any, Protocol

from kiosk.errors import ScreenError
from kiosk.policy import MSG_ENROLLING, Decision, Outcome
from warmcard.contract import Kind, Mode
from warmcard.localtime import DEFAULT_TZ

log = logging.getLogger("warmcard.kiosk.screen")

DEFAULT_PORT = 8765


# The fixed headline of each outcome (zh, en). SUCCESS shows the policy's message instead, which
# carries the name and what was recorded ("杨桂英 已签到 Checked in").
HEADLINES: dict[Outcome, tuple[str, str]] = {
    Outcome.SUCCESS: ("成功", "Done"),
    Outcome.REPEAT: ("已记录", "Already recorded"),
    Outcome.UNKNOWN: ("未登记的卡 请找工作人员", "Card not registered, please see staff"),
    Outcome.MEAL_REPEAT: ("本餐已领", "Meal already served"),
    Outcome.FAULT: ("暂停服务 请找工作人员", "Out of service"),
    Outcome.STAFF: ("补录用餐 请选择老人", "Record a meal by hand: choose the elder"),
}
# Seconds a tap stays on screen before the idle page returns: warnings stay longer so staff,
# called over by the elder, still see them.
HOLD_S: dict[Outcome, float] = {
    Outcome.SUCCESS: 3.0,
    Outcome.REPEAT: 3.0,
    Outcome.UNKNOWN: 6.0,
    Outcome.MEAL_REPEAT: 6.0,
    Outcome.FAULT: 8.0,
    Outcome.STAFF: 60.0,  # the list stays open this long (the kiosk's staff session as well)
}
TODAY_LABELS: dict[Mode | None, tuple[str, str]] = {
    Mode.ENTRANCE: ("今日签到", "check-ins today"),
    Mode.CANTEEN: ("今日供餐", "meals today"),
    None: ("今日", "today"),
}

_CJK = re.compile(r"[^\x00-\x7f]")
_WORDS = re.compile(r"\w", re.UNICODE)
_STATIC = {
    "/": ("screen.html", "text/html; charset=utf-8"),
    "/screen.css": ("screen.css", "text/css; charset=utf-8"),
    "/screen.js": ("screen.js", "text/javascript; charset=utf-8"),
}
_MAX_CLIENTS = 8  # Chromium plus a technician's curl or two; bounds the server's threads
_QUEUE = 64  # events queued per client; a client that falls this far behind is dropped
_PING_S = 15.0  # an SSE comment this often finds a dead client and keeps proxies quiet
_MAX_BODY = 1024  # a person id in JSON; anything longer is not from the page
TOKEN_HEADER = "X-Warmcard-Token"


class ListedPerson(Protocol):
    @property
    def person_id(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def served(self) -> bool: ...


class StaffDesk(Protocol):
    """What the page needs to record a meal by hand; `kiosk.runtime.Kiosk` is one."""

    def meal_list(self) -> Sequence[ListedPerson] | None: ...

    def record_manual(self, person_id: str) -> Decision: ...

    def close_staff_session(self) -> None: ...


def split_bilingual(message: str) -> tuple[str, str]:
    """Split "杨桂英 已签到 Checked in" (or "zh / en") into its Chinese and English parts.

    The English part starts at the first ASCII word that follows a word with Chinese in it, so a
    Latin name before the Chinese stays with it ("Li Wei 已签到" / "Checked in").
    """
    message = " ".join(message.split())
    if " / " in message:
        zh, _, en = message.partition(" / ")
        return zh.strip(), en.strip()
    words = message.split(" ")
    seen_cjk = False
    for index, word in enumerate(words):
        if _CJK.search(word):
            seen_cjk = True
        elif seen_cjk and word[:1].isascii() and word[:1].isalpha():
            return " ".join(words[:index]), " ".join(words[index:])
    return (message, "") if seen_cjk else ("", message)


def _same_text(a: str, b: str) -> bool:
    """Equal once punctuation and spaces are ignored ("未登记的卡，请找" == "未登记的卡 请找")."""
    return "".join(_WORDS.findall(a)) == "".join(_WORDS.findall(b))


def compose(
    outcome: Outcome,
    message: str = "",
    kind: Kind | None = None,
    hold: dict[Outcome, float] = HOLD_S,
) -> dict[str, Any]:
    """What the page shows for one answer: headline, detail line, and how long."""
    zh, en = split_bilingual(message)
    title_zh, title_en = HEADLINES[outcome]
    detail_zh = detail_en = ""
    if (outcome is Outcome.SUCCESS or message == MSG_ENROLLING) and (zh or en):
        title_zh, title_en = zh, en
    elif (zh or en) and not _same_text(zh, title_zh):
        # The name ("杨桂英 本餐已领" -> "杨桂英"), or what the fault is: staff need to know.
        detail_zh = zh.replace(title_zh, "").strip() if title_zh in zh else zh
        detail_en = "" if _same_text(en, title_en) else en
    return {
        "outcome": outcome.value,
        "kind": kind.value if kind is not None else None,
        "title_zh": title_zh,
        "title_en": title_en,
        "detail_zh": detail_zh,
        "detail_en": detail_en,
        "hold_s": hold[outcome],
    }


@dataclass(frozen=True)
class ScreenStatus:
    """The idle page's facts; online None: not yet known (the uplink is still connecting)."""

    site: str = ""
    tz: str = DEFAULT_TZ
    online: bool | None = None
    today: int | None = None
    mode: Mode | None = None
    lost_after_s: float = 5.0  # the page says "out of service" when the stream is down this long

    def to_json(self) -> dict[str, Any]:
        label_zh, label_en = TODAY_LABELS[self.mode]
        return {
            "lost_after_s": self.lost_after_s,
            "site": self.site,
            "tz": self.tz,
            "online": self.online,
            "today": self.today,
            "today_zh": label_zh,
            "today_en": label_en,
        }


class _Hub:
    """Fans events out to the connected pages; never blocks the publisher."""

    def __init__(self, status: ScreenStatus) -> None:
        self._lock = threading.Lock()
        self._clients: list[queue.Queue[bytes | None]] = []
        self._ids = itertools.count(1)
        self.status = status
        self.token = secrets.token_urlsafe(18)  # only the stream's readers learn it

    def status_frame(self, event_id: int) -> bytes:
        return self.frame("status", {**self.status.to_json(), "token": self.token}, event_id)

    @staticmethod
    def frame(event: str, data: dict[str, Any], event_id: int) -> bytes:
        body = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
        return f"id: {event_id}\nevent: {event}\ndata: {body}\n\n".encode()

    def subscribe(self) -> queue.Queue[bytes | None] | None:
        with self._lock:
            if len(self._clients) >= _MAX_CLIENTS:
                return None
            client: queue.Queue[bytes | None] = queue.Queue(_QUEUE)
            # The status first, so a page (re)connecting shows the right banner at once.
            client.put_nowait(self.status_frame(next(self._ids)))
            self._clients.append(client)
            return client

    def unsubscribe(self, client: queue.Queue[bytes | None]) -> None:
        with self._lock:
            if client in self._clients:
                self._clients.remove(client)

    def publish(self, event: str, data: dict[str, Any]) -> int:
        """Queue one event for every page; returns how many pages got it."""
        with self._lock:
            frame = self.frame(event, data, next(self._ids))
            for client in list(self._clients):
                try:
                    client.put_nowait(frame)
                except queue.Full:
                    log.warning("screen client stopped reading; dropping it")
                    self._clients.remove(client)
            return len(self._clients)

    def close(self) -> None:
        with self._lock:
            for client in self._clients:
                with contextlib.suppress(queue.Full):  # a full client is dropped all the same
                    client.put_nowait(None)
            self._clients.clear()

    @property
    def clients(self) -> int:
        with self._lock:
            return len(self._clients)


def _load_static() -> dict[str, tuple[bytes, str]]:
    folder = resources.files("kiosk") / "static"
    return {path: ((folder / name).read_bytes(), ctype) for path, (name, ctype) in _STATIC.items()}


class _Server(ThreadingHTTPServer):
    daemon_threads = True  # an SSE stream never ends on its own; don't wait for it on exit
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], hub: _Hub, desk: StaffDesk | None) -> None:
        self.hub = hub
        self.desk = desk
        self.files = _load_static()
        self.closing = threading.Event()
        super().__init__(address, _Handler)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    server_version = "warmcard-screen"

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s " + format, self.address_string(), *args)

    def _host_ok(self) -> bool:
        # Only the local browser: a page elsewhere that rebinds a DNS name to 127.0.0.1 sends a
        # foreign Host header and must not read the names of the site's elders.
        host = (self.headers.get("Host") or "").rsplit(":", 1)[0].strip("[]").lower()
        return host in ("127.0.0.1", "localhost", "::1")

    def _send(self, code: int, body: bytes, ctype: str = "text/plain; charset=utf-8") -> None:
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def do_HEAD(self) -> None:
        self.do_GET()

    def do_GET(self) -> None:
        if not self._host_ok():
            self._send(421, "本机访问 Local access only\n".encode())
            return
        path = self.path.split("?", 1)[0]
        if path == "/events" and self.command == "GET":
            self._stream()
        elif path == "/status.json":
            status = {**self.server.hub.status.to_json(), "clients": self.server.hub.clients}
            self._send(200, json.dumps(status, ensure_ascii=False).encode(), "application/json")
        elif path == "/staff/list" and self._staff_ok():
            assert self.server.desk is not None
            listed = self.server.desk.meal_list()
            if listed is None:
                self._json(409, {"error": "请先刷工作人员卡 Tap a staff card first"})
            else:
                people = [
                    {"person_id": p.person_id, "name": p.name, "served": p.served} for p in listed
                ]
                self._json(200, {"people": people})
        elif path in self.server.files:
            body, ctype = self.server.files[path]
            self._send(200, body, ctype)
        else:
            self._send(404, "未找到 Not found\n".encode())

    def _json(self, code: int, data: dict[str, Any]) -> None:
        body = json.dumps(data, ensure_ascii=False).encode()
        self._send(code, body, "application/json; charset=utf-8")

    def _staff_ok(self) -> bool:
        """The staff endpoints answer only the page itself; False: an error was sent."""
        origin = self.headers.get("Origin")
        if origin is not None:
            host = origin.split("://", 1)[-1].rsplit(":", 1)[0].strip("[]").lower()
            if host not in ("127.0.0.1", "localhost", "::1"):
                self._send(403, "本机页面才可以 Only the kiosk's own page\n".encode())
                return False
        if self.server.desk is None:
            self._send(404, "未找到 Not found\n".encode())
            return False
        given = self.headers.get(TOKEN_HEADER) or ""
        if not secrets.compare_digest(given.encode(), self.server.hub.token.encode()):
            self._send(403, "页面已过期，请刷新 Stale page: reload it\n".encode())
            return False
        return True

    def do_POST(self) -> None:
        if not self._host_ok():
            self._send(421, "本机访问 Local access only\n".encode())
            return
        path = self.path.split("?", 1)[0]
        if path not in ("/staff/meal", "/staff/cancel"):
            self._send(404, "未找到 Not found\n".encode())
            return
        if not self._staff_ok():
            return
        assert self.server.desk is not None
        if path == "/staff/cancel":
            self.server.desk.close_staff_session()
            self._json(200, {"closed": True})
            return
        try:
            length = int(self.headers.get("Content-Length") or "0")
            if not 0 < length <= _MAX_BODY:
                raise ValueError(f"body of {length} bytes")
            data = json.loads(self.rfile.read(length))
            person_id = data["person_id"]
            if not isinstance(person_id, str):
                raise ValueError("person_id is not a string")
        except (ValueError, KeyError, TypeError) as exc:
            self._json(400, {"error": f"请求无效 Bad request: {exc}"})
            return
        decision = self.server.desk.record_manual(person_id)
        code = 200 if decision.kind is not None else 409
        self._json(code, {"outcome": decision.outcome.value, "message": decision.message})

    def _stream(self) -> None:
        client = self.server.hub.subscribe()
        if client is None:
            self._send(503, "连接过多 Too many screens\n".encode())
            return
        try:
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream; charset=utf-8")
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            # retry: the page reconnects within a second when the kiosk restarts.
            self.wfile.write(b"retry: 1000\n\n")
            self.wfile.flush()
            while not self.server.closing.is_set():
                try:
                    frame = client.get(timeout=_PING_S)
                except queue.Empty:
                    frame = b": ping\n\n"
                if frame is None:
                    break
                self.wfile.write(frame)
                self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError, TimeoutError):
            pass  # the page went away; it reconnects by itself
        finally:
            self.server.hub.unsubscribe(client)


class ScreenFeedback:
    """The on-site screen as a feedback channel: `show()` pushes the answer to the page.

    `start()` binds the server (port 0: a free one, see `.port`); `set_status()` updates the
    idle page (site, time zone, online, today's count). Both return at once.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = DEFAULT_PORT,
        site: str = "",
        tz: str = DEFAULT_TZ,
        hold: dict[Outcome, float] | None = None,
        lost_after_s: float = 5.0,
        desk: StaffDesk | None = None,
    ) -> None:
        self.host = host
        self.desk = desk
        self.requested_port = port
        self.hold = {**HOLD_S, **(hold or {})}
        self._hub = _Hub(ScreenStatus(site=site, tz=tz, lost_after_s=lost_after_s))
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._status_lock = threading.Lock()

    @property
    def port(self) -> int:
        if self._server is None:
            raise ScreenError("屏幕服务未启动 Screen server not started")
        return int(self._server.server_address[1])

    def attach(self, desk: StaffDesk) -> None:
        """The kiosk that answers the staff's list (made after the screen, which it feeds)."""
        self.desk = desk
        if self._server is not None:
            self._server.desk = desk

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    @property
    def status(self) -> ScreenStatus:
        return self._hub.status

    @property
    def clients(self) -> int:
        """Pages connected to the event stream now."""
        return self._hub.clients

    def start(self) -> ScreenFeedback:
        try:
            self._server = _Server((self.host, self.requested_port), self._hub, self.desk)
        except OSError as exc:
            raise ScreenError(
                f"屏幕服务无法监听 {self.host}:{self.requested_port} "
                f"Screen server cannot listen there ({exc.strerror}): "
                "set screen_port to a free port, or stop the other program"
            ) from None
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.5}, name="screen"
        )
        self._thread.daemon = True
        self._thread.start()
        log.info("screen page at %s", self.url)
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.closing.set()
        self._hub.close()
        server.shutdown()
        server.server_close()
        if self._thread is not None:
            self._thread.join(5.0)

    def show(self, outcome: Outcome, message: str = "") -> None:
        self.show_tap(outcome, message, None)

    def show_tap(self, outcome: Outcome, message: str, kind: Kind | None) -> None:
        self._hub.publish("tap", compose(outcome, message, kind, self.hold))

    def set_status(
        self,
        *,
        online: bool | None = None,
        today: int | None = None,
        site: str | None = None,
        tz: str | None = None,
        mode: Mode | None = None,
    ) -> None:
        """Update the idle page; arguments left None keep their value. Sent only on change."""
        with self._status_lock:
            old = self._hub.status
            new = ScreenStatus(
                site=old.site if site is None else site,
                tz=old.tz if tz is None else tz,
                online=old.online if online is None else online,
                today=old.today if today is None else today,
                mode=old.mode if mode is None else mode,
                lost_after_s=old.lost_after_s,
            )
            if new == old:
                return
            self._hub.status = new
            self._hub.publish("status", {**new.to_json(), "token": self._hub.token})
