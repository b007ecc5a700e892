"""A real PostgreSQL server on a free local port, for the tests and the multi-machine demo.

Debian's `postgresql` package provides the binaries (scripts/setup.sh installs it); the
cluster is made with `initdb` in the run folder and run with postgresql.conf from this folder.
PostgreSQL refuses to run as root, so as root the cluster belongs to the `postgres` user and
the server runs as that user (the process is still ours to stop or kill -9).
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from warmcard.command.servers import ServerError, _Server, _template


def _bin(name: str) -> str:
    found = shutil.which(name, path="/usr/lib/postgresql/bin") or sorted(
        glob.glob(f"/usr/lib/postgresql/*/bin/{name}")
    )
    if isinstance(found, list):
        if not found:
            raise ServerError(f"{name} not found: install Debian's postgresql (scripts/setup.sh)")
        return found[-1]
    return found


@dataclass
class PostgreSQL(_Server):
    """`url` is the SQLAlchemy URL of its database `database`, as the superuser `postgres` (a
    deployment's own role and database are made by deploy/postgresql/setup.sql)."""

    name = "postgresql"
    database: str = "warmcard_test"
    user: str = "postgres"

    def __post_init__(self) -> None:
        super().__post_init__()
        self._as_root = os.geteuid() == 0
        # As root, a folder the postgres user may enter (a test's tmp dir is root's alone).
        base = Path(tempfile.mkdtemp(prefix="warmcard-pg-")) if self._as_root else self.run_dir
        self.data_dir = base / "pgdata"
        self.socket_dir = base / "sock"
        for folder in (base, self.socket_dir):
            folder.mkdir(exist_ok=True)
            self._own(folder)

    def _own(self, path: Path) -> None:
        if self._as_root:
            pw = pwd.getpwnam("postgres")
            os.chown(path, pw.pw_uid, pw.pw_gid)

    def _as_owner(self, command: list[str]) -> list[str]:
        if not self._as_root:
            return command
        return ["setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups", "--", *command]

    def _initdb(self) -> None:
        if (self.data_dir / "PG_VERSION").exists():
            return
        result = subprocess.run(
            self._as_owner(
                [
                    _bin("initdb"),
                    "-D",
                    str(self.data_dir),
                    "-U",
                    self.user,
                    "--auth=trust",  # loopback only (postgresql.conf); production: scram
                    "-E",
                    "UTF8",
                    "--locale=C.UTF-8",
                ]
            ),
            capture_output=True,
            text=True,
        )
        if result.returncode != 0:
            raise ServerError(f"initdb failed: {result.stderr.strip()[-500:]}")
        (self.data_dir / "postgresql.conf").write_text(
            _template("postgresql.conf").format(port=self.port, socket_dir=self.socket_dir)
        )

    def _command(self) -> list[str]:
        self._initdb()
        return self._as_owner([_bin("postgres"), "-D", str(self.data_dir)])

    def _ready(self, deadline: float) -> bool:
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                return False
            ready = subprocess.run(
                [_bin("pg_isready"), "-h", "127.0.0.1", "-p", str(self.port), "-q"],
                check=False,
            )
            if ready.returncode == 0:
                return self._create_database()
            time.sleep(0.1)
        return False

    def _create_database(self) -> bool:
        exists = self.psql(
            "postgres", f"SELECT 1 FROM pg_database WHERE datname = '{self.database}'"
        )
        if exists.strip() != "1":
            self.psql("postgres", f'CREATE DATABASE "{self.database}"')
        return True

    def psql(self, database: str, sql: str) -> str:
        result = subprocess.run(
            [
                _bin("psql"),
                "-h",
                "127.0.0.1",
                "-p",
                str(self.port),
                "-U",
                self.user,
                "-d",
                database,
                "-tAc",
                sql,
            ],
            capture_output=True,
            text=True,
        )
        if result.returncode != 0:
            raise ServerError(f"psql {sql[:60]!r}: {result.stderr.strip()[:300]}")
        return result.stdout

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://{self.user}@127.0.0.1:{self.port}/{self.database}"

    def cleanup(self) -> None:
        """Stop and remove the cluster."""
        self.stop()
        shutil.rmtree(self.data_dir.parent if self._as_root else self.data_dir, True)
