"""Start real Mosquitto and InfluxDB servers on free local ports, with the configs in this folder.

The demo, the tests and the benchmarks all use these, so every run exercises the same servers.
"""

from __future__ import annotations

import getpass
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Self

import httpx

from warmcard.errors import WarmcardError


class ServerError(WarmcardError):
    """A local server would not start; the message names its log file."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _template(name: str) -> str:
    return resources.files(__package__).joinpath(name).read_text()


def _wait_tcp(port: int, deadline: float) -> bool:
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return True
        except OSError:
            time.sleep(0.05)
    return False


@dataclass
class _Server:
    run_dir: Path
    port: int = 0
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    name = "server"

    def __post_init__(self) -> None:
        self.run_dir = Path(self.run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        if not self.port:
            self.port = free_port()

    @property
    def log_file(self) -> Path:
        return self.run_dir / f"{self.name}.log"

    def _command(self) -> list[str]:
        raise NotImplementedError

    def _ready(self, deadline: float) -> bool:
        return _wait_tcp(self.port, deadline)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _wait_http(self, path: str, status: int, deadline: float) -> bool:
        """Poll an HTTP health path until it answers `status`, the process dies, or time's up."""
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                return False
            try:
                if httpx.get(f"{self.url}{path}", timeout=1).status_code == status:
                    return True
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        return False

    def start(self, timeout: float = 30.0) -> None:
        """Start (or restart, on the same port and data) and wait until it answers."""
        if self.running:
            return
        log = self.log_file.open("ab")
        self.proc = subprocess.Popen(
            self._command(), stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        log.close()
        if not self._ready(time.monotonic() + timeout):
            self.stop()
            raise ServerError(f"{self.name} did not start on port {self.port}; see {self.log_file}")

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout: float = 10.0) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def kill(self) -> None:
        """SIGKILL, as a crash or power cut would."""
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        self.proc = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


# The production broker config and roles (docs/broker.md), run as they are by `secure_dir` brokers.
SECURE_CONF_DIR = Path(__file__).resolve().parents[3] / "deploy" / "mosquitto"


@dataclass
class Mosquitto(_Server):
    """A Mosquitto broker; `extra_conf` lines are appended to its config.

    Without `secure_dir`: the open test config in this folder (anonymous, one plain listener).
    With `secure_dir` (a broker directory made by `warmcard provision --ca-init`: ca.crt,
    server.crt, server.key, dynamic-security.json): deploy/mosquitto/mosquitto.conf, with only
    the ports, paths and user rewritten; `port` is the loopback service listener, `tls_port`
    the device one.
    """

    extra_conf: str = ""
    secure_dir: Path | None = None
    tls_port: int = 0
    name = "mosquitto"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.secure_dir is not None:
            self.secure_dir = Path(self.secure_dir)
            if not self.tls_port:
                self.tls_port = free_port()

    def _command(self) -> list[str]:
        binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        data = self.run_dir / "mosquitto-data"
        data.mkdir(exist_ok=True)
        conf = self.run_dir / "mosquitto.conf"
        if self.secure_dir is None:
            text = _template("mosquitto.conf").format(
                port=self.port, data_dir=data, user=getpass.getuser()
            )
        else:
            text = self._secure_conf(self.secure_dir, data)
        conf.write_text(text + "\n" + self.extra_conf + "\n")
        return [binary, "-c", str(conf)]

    def _secure_conf(self, secure_dir: Path, data: Path) -> str:
        """The production config with this run's ports and paths; every rewrite must apply once."""
        rewrites = {
            "listener 8883": f"listener {self.tls_port} 127.0.0.1",
            "listener 1883 127.0.0.1": f"listener {self.port} 127.0.0.1",
            "user": f"user {getpass.getuser()}",
            "persistence_location": f"persistence_location {data}/",
            "plugin_opt_config_file": (
                f"plugin_opt_config_file {secure_dir / 'dynamic-security.json'}"
            ),
            "cafile": f"cafile {secure_dir / 'ca.crt'}",
            "certfile": f"certfile {secure_dir / 'server.crt'}",
            "keyfile": f"keyfile {secure_dir / 'server.key'}",
        }
        done: list[str] = []
        out = []
        for line in (SECURE_CONF_DIR / "mosquitto.conf").read_text().splitlines():
            stripped = line.strip()
            key = stripped if stripped.startswith("listener ") else stripped.split(" ", 1)[0]
            if key in rewrites:
                done.append(key)
                line = rewrites[key]
            out.append(line)
        if sorted(done) != sorted(rewrites):
            raise ServerError(
                f"{SECURE_CONF_DIR / 'mosquitto.conf'} changed shape: expected each of "
                f"{sorted(rewrites)} once, found {sorted(done)}"
            )
        return "\n".join(out)

    def _ready(self, deadline: float) -> bool:
        ports = [self.port] + ([self.tls_port] if self.secure_dir is not None else [])
        return all(_wait_tcp(port, deadline) for port in ports)

    def reload(self) -> None:
        """SIGHUP: re-read the config and reload certificates (`systemctl reload mosquitto`)."""
        if self.proc is None or self.proc.poll() is not None:
            raise ServerError("mosquitto is not running; nothing to reload")
        os.kill(self.proc.pid, signal.SIGHUP)

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"


# The production InfluxDB config (docs/operations.md), run as it is by `secure` servers.
SECURE_INFLUX_CONF = SECURE_CONF_DIR.parent / "influxdb" / "influxdb.conf"


@dataclass
class InfluxD(_Server):
    """An InfluxDB 1.x server, written through /write and read through /query.

    With `secure`: deploy/influxdb/influxdb.conf (loopback, authentication on), only the ports
    and data paths rewritten; at first start the admin `admin_user` is created (the one thing
    InfluxDB allows before any user exists) and then the user `user` with `password`, who is
    what ingest.toml names (docs/operations.md, "InfluxDB").
    """

    rpc_port: int = 0
    secure: bool = False
    admin_user: str = "admin"
    admin_password: str = ""
    user: str = "warmcard"
    password: str = ""
    name = "influxd"

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.rpc_port:
            self.rpc_port = free_port()
        if self.secure:
            self.admin_password = self.admin_password or secrets.token_hex(16)
            self.password = self.password or secrets.token_hex(16)

    def _command(self) -> list[str]:
        binary = shutil.which("influxd") or "/usr/bin/influxd"
        conf = self.run_dir / "influxdb.conf"
        data = self.run_dir / "influx-data"
        if self.secure:
            text = self._secure_conf(data)
        else:
            text = _template("influxdb.conf").format(
                port=self.port, rpc_port=self.rpc_port, data_dir=data
            )
        conf.write_text(text)
        return [binary, "-config", str(conf)]

    def _secure_conf(self, data: Path) -> str:
        """The production config with this run's ports and paths; each rewrite applies once."""
        text = SECURE_INFLUX_CONF.read_text()
        rewrites = {
            'bind-address = "127.0.0.1:8088"': f'bind-address = "127.0.0.1:{self.rpc_port}"',
            'bind-address = "127.0.0.1:8086"': f'bind-address = "127.0.0.1:{self.port}"',
            '"/var/lib/influxdb/': f'"{data}/',
        }
        for old, new in rewrites.items():
            if old not in text:
                raise ServerError(f"{SECURE_INFLUX_CONF} changed shape: {old!r} not found")
            text = text.replace(old, new)
        return text

    def start(self, timeout: float = 30.0) -> None:
        super().start(timeout)
        if self.secure:
            self._create_users()

    def _create_users(self) -> None:
        """Admin first (allowed while no user exists), then the service user; idempotent."""
        admin = (self.admin_user, self.admin_password)
        statements = [
            (
                None,
                f"CREATE USER {self.admin_user} WITH PASSWORD '{self.admin_password}' "
                "WITH ALL PRIVILEGES",
            ),
            (admin, f"CREATE USER {self.user} WITH PASSWORD '{self.password}'"),
            (admin, f"GRANT ALL PRIVILEGES TO {self.user}"),
        ]
        for auth, q in statements:
            response = httpx.post(f"{self.url}/query", data={"q": q}, auth=auth, timeout=10)
            if response.status_code != 200 and "already exists" not in response.text:
                if auth is None and response.status_code in (401, 403):
                    continue  # the admin exists from an earlier start
                raise ServerError(f"influxd: {q.split(' WITH')[0]!r}: {response.text[:200]}")

    def _ready(self, deadline: float) -> bool:
        return self._wait_http("/ping", 204, deadline)


@dataclass
class Ingest(_Server):
    """One ingest worker as a child process (`warmcard ingest`), as systemd runs it.

    `port` is its /healthz and /metrics port; `extra_toml` lines are appended to the generated
    ingest.toml. `broker_port` / `influx_url` override where it connects (e.g. through a fault
    proxy). Workers and consoles that serve one deployment share `registry_path`,
    `console_db` and `deadletter_path` (by default files in `run_dir`).
    """

    broker: Mosquitto | None = None
    influx: InfluxD | None = None
    broker_port: int = 0
    influx_url: str = ""
    database: str = "warmcard"
    client_id: str = "ingest-1"
    registry_path: Path | None = None
    console_db: Path | None = None
    deadletter_path: Path | None = None
    metrics_token: str | None = None
    extra_toml: str = ""
    database_url: str | None = None  # PostgreSQL: every store there, shared by every host
    name = "ingest"
    command = "ingest"
    section = "worker"  # the ingest.toml table that holds this process's HTTP port

    @property
    def config_path(self) -> Path:
        return self.run_dir / f"{self.name}.toml"

    def _identity(self) -> str:
        return f'client_id = "{self.client_id}"'

    def write_config(self) -> Path:
        if self.broker is None or self.influx is None:
            raise ServerError(f"{self.name} needs a broker and an InfluxDB")
        registry = self.registry_path or self.run_dir / "registry.sqlite3"
        console = self.console_db or self.run_dir / "console.sqlite3"
        letters = self.deadletter_path or self.run_dir / "deadletter.sqlite3"
        token = f'metrics_token = "{self.metrics_token}"' if self.metrics_token else ""
        self.config_path.write_text(
            f"""# Written by warmcard.command.servers.{type(self).__name__}.
{self._identity()}
registry_path = "{registry}"
deadletter_path = "{letters}"
# One conflict index for every worker and console of this deployment.
seen_index_path = "{letters.with_name("seen.sqlite3")}"
console_db = "{console}"
# Plain http on 127.0.0.1 only, hence session cookies without the Secure flag.
cookie_secure = false
{token}
{self.extra_toml}

[mqtt]
host = "127.0.0.1"
port = {self.broker_port or self.broker.port}

[influx]
url = "{self.influx_url or self.influx.url}"
database = "{self.database}"
{self._influx_credentials()}

[{self.section}]
host = "127.0.0.1"
port = {self.port}
{self._database()}"""
        )
        return self.config_path

    def _database(self) -> str:
        return f'\n[database]\nurl = "{self.database_url}"\n' if self.database_url else ""

    def _influx_credentials(self) -> str:
        """The service user's name and password for a secure (authenticating) InfluxDB."""
        if self.influx is None or not self.influx.secure:
            return ""
        return f'username = "{self.influx.user}"\npassword = "{self.influx.password}"'

    def _command(self) -> list[str]:
        return [
            sys.executable,
            "-m",
            "warmcard",
            self.command,
            "--config",
            str(self.write_config()),
        ]

    def _ready(self, deadline: float) -> bool:
        return self._wait_http("/healthz", 200, deadline)


@dataclass
class Console(Ingest):
    """The console as a child process (`warmcard console`): pages, API, live state, alerts.

    `port` is its HTTP port; `client_id` is its console id (its link connection's client id
    is `<console id>-link`).
    """

    client_id: str = "console-1"
    name = "console"
    command = "console"
    section = "api"

    def _identity(self) -> str:
        return f'console_id = "{self.client_id}"'
