"""A backup's manifest: every store, every file with its SHA-256, size, mode and owner.

`manifest.json` is written last, so a backup that stopped half-way has none and is refused.
The checksums catch a truncated copy, a flipped bit or a file edited by hand; they are not a
signature (whoever can rewrite the files can rewrite the manifest too): keep backups where only
operators can write.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from cloud_ingest.errors import BackupError, BackupUnverified

FORMAT = "warmcard-backup/1"
MANIFEST = "manifest.json"
_CHUNK = 1 << 20


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass(frozen=True)
class FileEntry:
    """One file of the backup, relative to the backup folder, and where it came from."""

    path: str
    sha256: str
    size: int
    mode: int  # permission bits of the original (0o600 for a key)
    uid: int
    gid: int

    @classmethod
    def of(cls, root: Path, copy: Path, original: os.stat_result | None = None) -> FileEntry:
        """Hash the copy; mode and owner from the original file (the copy's when none)."""
        info = original or copy.stat()
        return cls(
            path=copy.relative_to(root).as_posix(),
            sha256=sha256_of(copy),
            size=copy.stat().st_size,
            mode=stat.S_IMODE(info.st_mode),
            uid=info.st_uid,
            gid=info.st_gid,
        )


@dataclass
class StoreEntry:
    """One store: its kind (how it is restored), where it lives, its files, kind-specific detail."""

    name: str
    kind: str
    source: str
    files: list[FileEntry] = field(default_factory=list)
    absent: bool = False  # nothing there to back up (e.g. no alerts yet, no broker on this host)
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass
class Manifest:
    created_at: str
    stores: list[StoreEntry] = field(default_factory=list)
    format: str = FORMAT

    def store(self, name: str) -> StoreEntry:
        for entry in self.stores:
            if entry.name == name:
                return entry
        raise BackupError(f"备份中没有 no store {name!r} in this backup")

    def write(self, folder: Path) -> Path:
        path = folder / MANIFEST
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(self), indent=2, ensure_ascii=False) + "\n")
        os.replace(tmp, path)
        return path

    @classmethod
    def read(cls, folder: Path) -> Manifest:
        path = folder / MANIFEST
        try:
            doc = json.loads(path.read_text())
        except FileNotFoundError:
            raise BackupError(
                f"没有清单 no {MANIFEST} in {folder}: not a backup, or one that did not finish"
            ) from None
        except (OSError, ValueError) as exc:
            raise BackupError(f"清单无法读取 cannot read {path}: {exc}") from None
        if not isinstance(doc, dict) or doc.get("format") != FORMAT:
            raise BackupError(f"{path}: not a {FORMAT} manifest")
        try:
            stores = [
                StoreEntry(
                    name=s["name"],
                    kind=s["kind"],
                    source=s["source"],
                    files=[FileEntry(**f) for f in s["files"]],
                    absent=bool(s.get("absent", False)),
                    detail=dict(s.get("detail", {})),
                )
                for s in doc["stores"]
            ]
            return cls(created_at=str(doc["created_at"]), stores=stores)
        except (KeyError, TypeError) as exc:
            raise BackupError(f"{path}: malformed manifest ({exc})") from None

    def verify(self, folder: Path) -> None:
        """Every listed file present, of its size and SHA-256; raise BackupUnverified if not."""
        problems: list[str] = []
        root = folder.resolve()
        for store in self.stores:
            for entry in store.files:
                path = (folder / entry.path).resolve()
                if not path.is_relative_to(root):
                    problems.append(f"{entry.path}: points outside the backup folder")
                elif not path.is_file():
                    problems.append(f"{entry.path}: missing")
                elif path.stat().st_size != entry.size:
                    problems.append(
                        f"{entry.path}: {path.stat().st_size} bytes, manifest says {entry.size}"
                    )
                elif sha256_of(path) != entry.sha256:
                    problems.append(f"{entry.path}: SHA-256 differs from the manifest")
        if problems:
            raise BackupUnverified(problems)
