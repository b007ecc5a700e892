"""The kinds of store a backup knows: SQLite files, a PostgreSQL database, an InfluxDB
database, plain files.

Each kind copies its store into the backup folder and back. A new kind is one more class with
these four methods and a name in `KINDS`; the manifest, verification and the commands stay as
they are.
"""

from __future__ import annotations

import glob
import os
import shutil
import sqlite3
import subprocess
from pathlib import Path
from typing import Any, ClassVar, Protocol

from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import NullPool

from cloud_ingest.errors import BackupError, IngestError
from cloud_ingest.ops.backup.manifest import FileEntry, StoreEntry
from cloud_ingest.pipeline.influx import InfluxV1
from cloud_ingest.pipeline.settings import InfluxSettings

SKIPPED_NAMES = frozenset({".provision.lock"})  # a lock file: nothing to keep
# Key-value rows the stores' migrations write themselves (the registry's version, the
# notification cursor): a database the services only created the tables in holds these.
SEEDED_TABLES = frozenset({"meta", "alerts_meta"})
_PG_HINT = "install Debian's postgresql(-client), or set [backup] pg_bin to its bin folder"


class Store(Protocol):
    """One store a backup covers."""

    name: str
    kind: ClassVar[str]

    def backup(self, folder: Path, root: Path) -> StoreEntry:
        """Copy the store into `folder` (inside the backup `root`); the entry lists the files."""

    def blocker(self, entry: StoreEntry) -> str | None:
        """Why restoring `entry` here would overwrite something, or None when it is safe."""

    def restore(self, entry: StoreEntry, root: Path) -> None:
        """Put the backed-up store in place (the caller verified the files and the blockers)."""


def _apply_owner(path: Path, entry: FileEntry) -> None:
    """The original mode always; the original owner only when we may (running as root)."""
    if os.geteuid() == 0:
        os.chown(path, entry.uid, entry.gid)
    os.chmod(path, entry.mode)


def _run(command: list[str], hint: str, *, against: str, env: dict[str, str] | None = None) -> None:
    """Run a backup tool; BackupError with the tail of its output when it fails."""
    try:
        done = subprocess.run(
            command,
            capture_output=True,
            text=True,
            timeout=3600,
            check=False,
            env={**os.environ, **(env or {})},
        )
    except OSError as exc:
        raise BackupError(f"cannot run {command[0]!r} ({exc.strerror}): {hint}") from None
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        raise BackupError(
            f"{Path(command[0]).name} {command[1]} failed (exit {done.returncode}) against "
            f"{against}: " + " | ".join(tail)
        )


class SqliteStore:
    """A SQLite file, copied with the online backup API: consistent while services write to it."""

    kind: ClassVar[str] = "sqlite"

    def __init__(self, name: str, path: Path) -> None:
        self.name = name
        self.path = Path(path)

    def backup(self, folder: Path, root: Path) -> StoreEntry:
        entry = StoreEntry(self.name, self.kind, str(self.path))
        if not self.path.is_file():
            entry.absent = True
            return entry
        folder.mkdir(parents=True, exist_ok=True)
        copy = folder / self.path.name
        src = sqlite3.connect(self.path, timeout=30)
        dst = sqlite3.connect(copy)
        try:
            src.backup(dst)
            # One self-contained file: no -wal beside it that the manifest would not cover.
            dst.execute("PRAGMA journal_mode=DELETE")
            (result,) = dst.execute("PRAGMA integrity_check").fetchone()
        except sqlite3.Error as exc:
            raise BackupError(f"SQLite {self.path}: {exc}") from None
        finally:
            dst.close()
            src.close()
        if result != "ok":
            raise BackupError(f"SQLite {self.path} fails its integrity check: {result}")
        entry.files.append(FileEntry.of(root, copy, self.path.stat()))
        return entry

    def blocker(self, entry: StoreEntry) -> str | None:
        if self.path.exists():
            return f"{self.name}: {self.path} exists"
        return None

    def restore(self, entry: StoreEntry, root: Path) -> None:
        (item,) = entry.files
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + ".restoring")
        tmp.unlink(missing_ok=True)
        src = sqlite3.connect(root / item.path)
        dst = sqlite3.connect(tmp)
        try:
            src.backup(dst)
        finally:
            dst.close()
            src.close()
        _apply_owner(tmp, item)
        # A journal of the file being replaced must not be applied to the restored one.
        for suffix in ("-wal", "-shm", "-journal"):
            Path(f"{self.path}{suffix}").unlink(missing_ok=True)
        os.replace(tmp, self.path)


class InfluxStore:
    """One InfluxDB 1.x database, through `influxd backup -portable` / `influxd restore -portable`.

    Both talk to the server's RPC bind address (`bind-address`, 127.0.0.1:8088 by default), not
    the HTTP API. InfluxDB 1.6 restores only into a database that does not exist yet (`-newdb`),
    so a restore goes into a fresh server or under a new name, never over live data.
    """

    kind: ClassVar[str] = "influxdb"

    def __init__(
        self,
        name: str,
        influx: InfluxSettings,
        rpc: str,
        influxd: str = "influxd",
        target_database: str | None = None,
    ) -> None:
        self.name = name
        self.influx = influx
        self.rpc = rpc
        self.influxd = influxd
        self.target_database = target_database or influx.database

    def _run(self, *args: str) -> None:
        binary = shutil.which(self.influxd) or self.influxd
        hint = "install InfluxDB 1.x or set [backup] influxd to its path"
        _run([binary, *args], hint, against=self.rpc)

    def _databases(self) -> set[str]:
        storage = InfluxV1(self.influx)
        try:
            series = storage.query("SHOW DATABASES")
        except IngestError as exc:
            raise BackupError(f"InfluxDB at {self.influx.url}: {exc}") from None
        finally:
            storage.close()
        return {str(row[0]) for s in series for row in s.values}

    def backup(self, folder: Path, root: Path) -> StoreEntry:
        database = self.influx.database
        entry = StoreEntry(self.name, self.kind, f"{self.influx.url} database {database}")
        entry.detail = {"database": database}
        if database not in self._databases():
            entry.absent = True
            return entry
        folder.mkdir(parents=True, exist_ok=True)
        self._run("backup", "-portable", "-host", self.rpc, "-db", database, str(folder))
        entry.files = [FileEntry.of(root, f) for f in sorted(folder.rglob("*")) if f.is_file()]
        return entry

    def blocker(self, entry: StoreEntry) -> str | None:
        if self.target_database in self._databases():
            return (
                f"{self.name}: database {self.target_database!r} exists at {self.influx.url} "
                "(restore into a new name with --influx-database, or drop it first)"
            )
        return None

    def restore(self, entry: StoreEntry, root: Path) -> None:
        folder = root / self.name
        self._run(
            "restore",
            "-portable",
            "-host",
            self.rpc,
            "-db",
            str(entry.detail["database"]),
            "-newdb",
            self.target_database,
            str(folder),
        )


class FileSetStore:
    """A folder of plain files (the CA, certificates, broker secrets) or one file, with modes."""

    kind: ClassVar[str] = "files"

    def __init__(self, name: str, path: Path) -> None:
        self.name = name
        self.path = Path(path)

    def _originals(self) -> list[Path]:
        if self.path.is_file():
            return [self.path]
        return sorted(
            p for p in self.path.rglob("*") if p.is_file() and p.name not in SKIPPED_NAMES
        )

    def backup(self, folder: Path, root: Path) -> StoreEntry:
        entry = StoreEntry(self.name, self.kind, str(self.path))
        if not self.path.exists():
            entry.absent = True
            return entry
        base = self.path.parent if self.path.is_file() else self.path
        entry.detail = {"single_file": self.path.is_file()}
        if not self.path.is_file():
            entry.detail["dir_mode"] = self.path.stat().st_mode & 0o7777
        for original in self._originals():
            copy = folder / original.relative_to(base)
            copy.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(original, copy)
            entry.files.append(FileEntry.of(root, copy, original.stat()))
        return entry

    def blocker(self, entry: StoreEntry) -> str | None:
        if self.path.is_file() or (self.path.is_dir() and any(self._originals())):
            return f"{self.name}: {self.path} exists"
        return None

    def restore(self, entry: StoreEntry, root: Path) -> None:
        single = bool(entry.detail.get("single_file"))
        base = self.path.parent if single else self.path
        if not single:
            base.mkdir(parents=True, exist_ok=True)
            base.chmod(int(entry.detail.get("dir_mode", 0o750)))
        prefix = f"{self.name}/"
        for item in entry.files:
            target = self.path if single else base / item.path.removeprefix(prefix)
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_name(target.name + ".restoring")
            shutil.copyfile(root / item.path, tmp)
            _apply_owner(tmp, item)
            os.replace(tmp, target)


class PostgresStore:
    """The PostgreSQL database every store shares (`[database] url`), through
    `pg_dump --format=custom` and `pg_restore --clean --if-exists`, in one transaction.

    The tools come from `bin_dir` ([backup] pg_bin), else PATH, else the newest of Debian's
    /usr/lib/postgresql/*/bin (pg_dump must be as new as the server). The password, if the URL
    has one, goes to them as PGPASSWORD, never on a command line.
    """

    kind: ClassVar[str] = "postgresql"

    def __init__(self, name: str, url: str, bin_dir: Path | None = None) -> None:
        self.name = name
        self.url = make_url(url)
        self.bin_dir = bin_dir

    def _tool(self, name: str) -> str:
        if self.bin_dir is not None:
            return str(self.bin_dir / name)
        found = shutil.which(name) or sorted(
            glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), key=_version_key
        )
        if isinstance(found, list):
            return found[-1] if found else name
        return found

    def _libpq(self) -> tuple[list[str], dict[str, str]]:
        """`--dbname` for the tools (a libpq URI without the password) and their environment."""
        uri = self.url.set(drivername="postgresql", password=None)
        env = {"PGPASSWORD": self.url.password} if self.url.password else {}
        return ["--dbname", uri.render_as_string(hide_password=False)], env

    def _describe(self) -> str:
        return self.url.render_as_string(hide_password=True)

    def _tables_with_rows(self) -> list[str]:
        engine = create_engine(self.url, poolclass=NullPool)
        try:
            with engine.connect() as conn:
                names = inspect(conn).get_table_names()
                return [
                    n
                    for n in sorted(names)
                    if not n.startswith("alembic_version")
                    and n not in SEEDED_TABLES
                    and conn.execute(text(f'SELECT EXISTS (SELECT 1 FROM "{n}")')).scalar()
                ]
        except SQLAlchemyError as exc:
            raise BackupError(f"PostgreSQL {self._describe()}: {exc}") from None
        finally:
            engine.dispose()

    def backup(self, folder: Path, root: Path) -> StoreEntry:
        entry = StoreEntry(self.name, self.kind, self._describe())
        entry.detail = {"database": self.url.database}
        folder.mkdir(parents=True, exist_ok=True)
        dump = folder / f"{self.url.database}.dump"
        dbname, env = self._libpq()
        command = [self._tool("pg_dump"), "--format=custom", "--no-owner", "--file", str(dump)]
        _run([*command, *dbname], _PG_HINT, against=self._describe(), env=env)
        os.chmod(dump, 0o600)
        entry.files.append(FileEntry.of(root, dump))
        return entry

    def blocker(self, entry: StoreEntry) -> str | None:
        full = self._tables_with_rows()
        if full:
            return (
                f"{self.name}: {self._describe()} holds data in {', '.join(full)} (restore into "
                "an empty database: a new one, or one the services only created the tables in)"
            )
        return None

    def restore(self, entry: StoreEntry, root: Path) -> None:
        (item,) = entry.files
        dbname, env = self._libpq()
        command = [self._tool("pg_restore"), "--clean", "--if-exists", "--no-owner"]
        command += ["--single-transaction", *dbname, str(root / item.path)]
        _run(command, _PG_HINT, against=self._describe(), env=env)


def _version_key(path: str) -> tuple[int, ...]:
    """/usr/lib/postgresql/15/bin/x -> (15,): newest last, 9.6 before 10."""
    version = Path(path).parent.parent.name
    return tuple(int(p) for p in version.split(".") if p.isdigit())


KINDS: dict[str, type[Any]] = {
    k.kind: k for k in (SqliteStore, PostgresStore, InfluxStore, FileSetStore)
}
