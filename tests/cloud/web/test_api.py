# mypy: allow-untyped-defs
"""The HTTP API on a real uvicorn server: occupancy matches what was published, SSE pushes it."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from cloud_ingest.console.roles import Role
from cloud_ingest.web.app import create_app
from tests.support.console import add_user, auth_config, logged_in, place_sites
from tests.support.ingest import (
    EventMaker,
    Publisher,
    check_live,
    influx_counts,
    make_settings,
    scenario,
    wait_for,
    write_registry,
)
from tests.support.stack import Stack
from warmcard.command.servers import free_port
from warmcard.contract import DeviceStatus, Kind, ReaderState, status_topic

METRICS_TOKEN = "test-metrics-token-0123456789"


@pytest.fixture
def api(tmp_path, mosquitto, influxd, influx_db, topic_prefix) -> Iterator[tuple[str, dict, Any]]:
    ids = write_registry(tmp_path, topic_prefix)
    settings = make_settings(
        tmp_path, mosquitto, influxd, influx_db, topic_prefix, metrics_token=METRICS_TOKEN
    )
    place_sites(
        settings.console_db,
        {ids["site_a"]: "dali/dali-city/xizhou", ids["site_b"]: "dali/eryuan/niujie"},
    )
    add_user(settings.console_db, "admin.dali", Role.ADMIN, "dali")
    add_user(settings.console_db, "xizhou.view", Role.VIEWER, "dali/dali-city/xizhou")
    app = create_app(settings, auth=auth_config(settings.console_db))
    # Bind first and hand uvicorn the socket: no window for another process to take the port.
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    wait_for(lambda: server.started)
    service = Stack(settings, console=app.state.service).start()
    yield f"http://127.0.0.1:{sock.getsockname()[1]}", ids, service
    service.stop()
    server.should_exit = True
    thread.join(15)
    sock.close()
    assert not thread.is_alive()
    assert not service.started  # lifespan stopped the consumer


@pytest.fixture
def login_as(api) -> Iterator[Any]:
    """Log in as a user of the `api` app; the clients are closed after the test."""
    clients: list[httpx.Client] = []

    def make(username: str) -> httpx.Client:
        clients.append(logged_in(api[0], username))
        return clients[-1]

    yield make
    for client in clients:
        client.close()


@pytest.fixture
def publisher(mosquitto) -> Iterator[Publisher]:
    pub = Publisher(mosquitto.port)
    yield pub
    pub.close()


def test_occupancy_matches_published_events(api, publisher, login_as):
    url, ids, service = api
    events, expected = scenario(ids)
    publisher.publish(events)
    wait_for(lambda: influx_counts(service.settings) == expected)
    wait_for(lambda: service.metrics.acked == len(events))
    assert httpx.get(f"{url}/api/v1/occupancy").status_code == 401  # no session, no data
    client = login_as("admin.dali")
    doc = client.get("/api/v1/occupancy").json()
    sites = {s["site_id"]: s for s in doc["sites"]}
    a = sites[ids["site_a"]]
    assert a["name_zh"] == "喜洲幸福小院" and a["capacity"] == 40
    assert (a["present"], a["arrivals"], a["meal_repeats"], a["unknown_cards"]) == (2, 3, 1, 1)
    assert a["meals"] == {"breakfast": 1, "lunch": 2, "dinner": 0} and a["meals_total"] == 3
    assert [d["device_id"] for d in a["devices"]] == sorted([ids["gate_a"], ids["canteen_a"]])
    b = client.get("/api/v1/occupancy", params={"site": ids["site_b"]}).json()["sites"]
    assert [(s["present"], s["arrivals"]) for s in b] == [(1, 2)]
    assert client.get("/api/v1/occupancy", params={"site": "nowhere"}).status_code == 404
    check_live(service, ids)
    # A Xizhou viewer sees site A only; site B answers exactly like an unknown site.
    viewer = login_as("xizhou.view")
    assert [s["site_id"] for s in viewer.get("/api/v1/occupancy").json()["sites"]] == [
        ids["site_a"]
    ]
    hidden = viewer.get("/api/v1/occupancy", params={"site": ids["site_b"]})
    assert (
        hidden.status_code == 404
        and hidden.json() == client.get("/api/v1/occupancy", params={"site": "nowhere"}).json()
    )


def test_device_status_from_heartbeat_and_last_will(api, publisher, login_as):
    _, ids, _ = api
    client = login_as("xizhou.view")
    gate = ids["gate_a"]
    online = DeviceStatus(device_id=gate, state="online", outbox_depth=3, reader=ReaderState.OK)
    publisher.publish_raw(status_topic(gate), online.to_bytes(), retain=True)

    def device():
        site = client.get("/api/v1/occupancy", params={"site": ids["site_a"]}).json()["sites"][0]
        return next(d for d in site["devices"] if d["device_id"] == gate)

    wait_for(lambda: device()["state"] == "online")
    assert device()["outbox_depth"] == 3
    offline = DeviceStatus(device_id=gate, state="offline")
    publisher.publish_raw(status_topic(gate), offline.to_bytes(), retain=True)
    wait_for(lambda: device()["state"] == "offline")
    publisher.publish_raw(status_topic(gate), b"", retain=True)  # clear the retained status


def test_sse_pushes_a_change_within_a_second(api, publisher, login_as):
    url, ids, _ = api
    gate = EventMaker(ids["gate_b"])
    docs: list[dict] = []
    opened = threading.Event()

    client = login_as("admin.dali")
    assert httpx.get(f"{url}/api/v1/stream").status_code == 401
    viewer = login_as("xizhou.view")
    assert viewer.get("/api/v1/stream", params={"site": ids["site_b"]}).status_code == 404

    def listen() -> None:
        with client.stream("GET", "/api/v1/stream", params={"site": ids["site_b"]}) as r:
            assert r.headers["content-type"].startswith("text/event-stream")
            for line in r.iter_lines():
                if line.startswith("data: "):
                    docs.append(json.loads(line[6:]))
                    opened.set()
                    if docs[-1]["sites"][0]["present"] == 1:
                        return

    thread = threading.Thread(target=listen, daemon=True)
    thread.start()
    assert opened.wait(5)
    assert docs[0]["sites"][0]["present"] == 0
    sent = time.monotonic()
    publisher.publish([gate.make(Kind.CHECK_IN, "P0008")])
    thread.join(5)
    assert not thread.is_alive()
    # 50 ms batch window + 100 ms SSE coalescing + the write: well under a second.
    assert time.monotonic() - sent < 1.0
    assert docs[-1]["sites"][0]["arrivals"] == 1


def test_page_and_health(api, login_as):
    url, _, _ = api
    # A browser without a session is sent to the login page, and back afterwards.
    anon = httpx.get(url + "/", headers={"Accept": "text/html"})
    assert anon.status_code == 303 and anon.headers["location"] == "/login?next=/"
    client = login_as("admin.dali")
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "在院" in page.text and "总览" in page.text
    assert "Present" in client.get("/", params={"lang": "en"}).text
    scripts = re.findall(r'<script[^>]*src="([^"]+)"', page.text)
    assert scripts and all(s.startswith("/static/") for s in scripts)  # no CDN
    for src in scripts:
        assert client.get(src).status_code == 200
    assert "EventSource" in client.get("/static/console.js").text
    health = httpx.get(url + "/healthz")
    assert health.status_code == 200
    assert health.json() == {"status": "ok"}  # anonymous: no details
    auth = {"Authorization": f"Bearer {METRICS_TOKEN}"}
    body = httpx.get(url + "/healthz", headers=auth).json()
    assert body["status"] == "ok" and body["role"] == "console" and body["status_link_connected"]


@pytest.mark.parametrize("role", ["ingest", "console"])
def test_each_warmcard_role_serves_and_stops_on_sigterm(
    tmp_path, mosquitto, influxd, influx_db, topic_prefix, role
):
    write_registry(tmp_path, topic_prefix)
    port = free_port()
    config = tmp_path / "ingest.toml"
    config.write_text(
        f"""
client_id = "ingest-{topic_prefix}"
share_group = "g{topic_prefix}"
session_expiry_s = 60
registry_path = "{tmp_path / "registry.sqlite3"}"
deadletter_path = "{tmp_path / "deadletter.sqlite3"}"
console_db = "{tmp_path / "console.sqlite3"}"

[mqtt]
port = {mosquitto.port}

[influx]
url = "{influxd.url}"
database = "{influx_db}"

[{"worker" if role == "ingest" else "api"}]
port = {port}
""",
        encoding="utf-8",
    )
    warmcard = Path(sys.executable).with_name("warmcard")
    # systemd's notify socket, as Type=notify units get it: READY=1 must arrive.
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(str(tmp_path / "notify.sock"))
    notify.settimeout(20)
    proc = subprocess.Popen(
        [str(warmcard), role, "--config", str(config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env={**os.environ, "NOTIFY_SOCKET": str(tmp_path / "notify.sock")},
    )
    try:

        def healthy() -> bool:
            try:
                return httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200
            except httpx.TransportError:
                return False

        wait_for(healthy, timeout=20)
        notes = b""
        while b"READY=1" not in notes:
            notes += notify.recv(4096) + b"\n"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
    finally:
        notify.close()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        assert proc.stdout is not None
        output = proc.stdout.read().decode()
        proc.stdout.close()
    assert "Application startup complete" in output and "Application shutdown complete" in output
    assert "Traceback" not in output
