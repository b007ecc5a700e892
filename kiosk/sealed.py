"""The kiosk's cache files sealed at rest (AES-256-GCM), and where their key comes from.

The roster cache holds names and card UIDs of the site's elders; a kiosk's SD card can be carried
off. Each file is `WCS1 | 12-byte nonce | ciphertext+tag`, its name bound in as associated data
(a roster file cannot be swapped in as the config). The key is 32 random bytes, read in this
order (docs/operations.md, "Encryption at rest"):

1. `cache_key_file` from kiosk.toml, when set;
2. systemd's credential `cache-key` (`LoadCredential=cache-key:/etc/warmcard/cache.key` in
   warmcard-kiosk.service: the file stays root-only, the service reads a private copy);
3. otherwise `cache.key` in the data dir, made on first start (the demo and tests): the files
   are still not clear text, but the key travels with them, and a warning says so.
"""

from __future__ import annotations

import logging
import os
import secrets
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from kiosk.errors import KioskError

log = logging.getLogger("warmcard.kiosk.cache")

MAGIC = b"WCS1"
KEY_BYTES = 32
NONCE_BYTES = 12
CREDENTIAL = "cache-key"


class CacheKeyError(KioskError):
    """The cache key is missing or malformed; the message says how to make one."""


class Unsealable(KioskError):
    """A sealed file that this key cannot open (another key, or damaged)."""


def _read_key(path: Path) -> bytes:
    try:
        key = path.read_bytes()
    except OSError as exc:
        raise CacheKeyError(
            f"读不到缓存密钥 cannot read the cache key {path}: {exc.strerror}; make it with "
            f"`sudo sh -c 'umask 077; head -c 32 /dev/urandom > {path}'` "
            "(systemd/install-kiosk.sh does)"
        ) from None
    if len(key) != KEY_BYTES:
        raise CacheKeyError(
            f"缓存密钥长度不对 cache key {path} holds {len(key)} bytes, not {KEY_BYTES}; "
            f"make a new one: `sudo sh -c 'umask 077; head -c 32 /dev/urandom > {path}'`"
        )
    return key


def load_key(data_dir: Path, key_file: Path | None = None) -> bytes:
    """The cache key: the configured file, else systemd's credential, else one in data_dir."""
    if key_file is not None:
        return _read_key(key_file)
    credentials = os.environ.get("CREDENTIALS_DIRECTORY")
    if credentials and (Path(credentials) / CREDENTIAL).exists():
        return _read_key(Path(credentials) / CREDENTIAL)
    local = data_dir / "cache.key"
    if not local.exists():
        fd = os.open(local, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, secrets.token_bytes(KEY_BYTES))
            os.fsync(fd)
        finally:
            os.close(fd)
    log.warning(
        "缓存密钥与缓存同在数据目录 the cache key is %s, beside the cache it protects: "
        "install the kiosk with systemd/install-kiosk.sh (a root-only key in /etc/warmcard)",
        local,
    )
    return _read_key(local)


def seal(key: bytes, name: str, plain: bytes) -> bytes:
    nonce = secrets.token_bytes(NONCE_BYTES)
    return MAGIC + nonce + AESGCM(key).encrypt(nonce, plain, name.encode())


def is_sealed(data: bytes) -> bool:
    return data.startswith(MAGIC)


def unseal(key: bytes, name: str, data: bytes) -> bytes:
    if not is_sealed(data) or len(data) < len(MAGIC) + NONCE_BYTES + 16:
        raise Unsealable(f"{name}: not a sealed cache file")
    nonce = data[len(MAGIC) : len(MAGIC) + NONCE_BYTES]
    try:
        return AESGCM(key).decrypt(nonce, data[len(MAGIC) + NONCE_BYTES :], name.encode())
    except InvalidTag:
        raise Unsealable(f"{name}: sealed with another key, or damaged") from None
