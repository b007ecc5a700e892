"""The Warmcard device CA: creates the CA, the broker's server certificate and device certificates.

All keys are ECDSA P-256: fast to sign and verify on a Raspberry Pi, accepted by every OpenSSL
that Mosquitto and paho link against.
"""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from warmcard.errors import WarmcardError

# A Pi has no RTC: until NTP syncs, fake-hwclock may put it days or months behind. Certificates
# valid from 2024-01-01 (the contract's EARLIEST_EVENT) are not yet "not valid before" for it.
NOT_BEFORE = datetime(2024, 1, 1, tzinfo=UTC)
CA_YEARS = 30
# Long-lived on purpose: revocation is by password (see docs/broker.md), and a kiosk that is
# offline for months must not come back to an expired certificate it cannot renew.
LEAF_YEARS = 20
ORGANISATION = "Warmcard"


class PkiError(WarmcardError):
    """The CA is missing or unreadable; the message says which file and what to run."""


@dataclass(frozen=True)
class CaFiles:
    """Where the CA and the broker's server certificate live in the broker directory."""

    broker_dir: Path

    @property
    def ca_cert(self) -> Path:
        return self.broker_dir / "ca.crt"

    @property
    def ca_key(self) -> Path:
        return self.broker_dir / "ca.key"

    @property
    def server_cert(self) -> Path:
        return self.broker_dir / "server.crt"

    @property
    def server_key(self) -> Path:
        return self.broker_dir / "server.key"


@dataclass(frozen=True)
class IssuedCert:
    cert_pem: bytes
    key_pem: bytes
    serial: int


def _new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def write_private(path: Path, data: bytes) -> None:
    """Write a secret file readable by its owner only (created 0600, never briefly wider)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
    os.chmod(path, 0o600)


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, ORGANISATION),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _years(n: int) -> datetime:
    return datetime.now(UTC) + timedelta(days=365 * n)


def init_ca(files: CaFiles, common_name: str = "Warmcard device CA") -> bool:
    """Create the CA key and certificate unless they exist; True when a new CA was made."""
    if files.ca_cert.exists() or files.ca_key.exists():
        if not (files.ca_cert.exists() and files.ca_key.exists()):
            raise PkiError(
                f"CA 不完整 incomplete CA in {files.broker_dir}: need both ca.crt and ca.key"
            )
        return False
    key = _new_key()
    name = _name(common_name)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOT_BEFORE)
        .not_valid_after(_years(CA_YEARS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    write_private(files.ca_key, _key_pem(key))
    files.ca_cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return True


def _load_ca(files: CaFiles) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    try:
        cert = x509.load_pem_x509_certificate(files.ca_cert.read_bytes())
        key = serialization.load_pem_private_key(files.ca_key.read_bytes(), password=None)
    except FileNotFoundError:
        raise PkiError(
            f"没有 CA no device CA in {files.broker_dir}; run `warmcard provision --ca-init` first"
        ) from None
    except ValueError as exc:
        raise PkiError(f"CA 文件无效 unreadable CA in {files.broker_dir}: {exc}") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise PkiError(f"{files.ca_key} is not an EC key made by `warmcard provision --ca-init`")
    return cert, key


def _sign_leaf(
    files: CaFiles,
    common_name: str,
    usage: x509.ObjectIdentifier,
    sans: list[x509.GeneralName],
) -> IssuedCert:
    ca_cert, ca_key = _load_ca(files)
    key = _new_key()
    serial = x509.random_serial_number()
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(serial)
        .not_valid_before(NOT_BEFORE)
        .not_valid_after(min(_years(LEAF_YEARS), ca_cert.not_valid_after_utc))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=True,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
    )
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    cert = builder.sign(ca_key, hashes.SHA256())
    return IssuedCert(cert.public_bytes(serialization.Encoding.PEM), _key_pem(key), serial)


def issue_server_cert(files: CaFiles, names: list[str]) -> IssuedCert:
    """Issue (or renew) and install the broker's certificate for these DNS names / IPs."""
    if not names:
        raise PkiError("服务器名称 give at least one --server-name (the broker's DNS name or IP)")
    sans: list[x509.GeneralName] = []
    for name in names:
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            sans.append(x509.DNSName(name))
    issued = _sign_leaf(files, names[0], ExtendedKeyUsageOID.SERVER_AUTH, sans)
    write_private(files.server_key, issued.key_pem)
    files.server_cert.write_bytes(issued.cert_pem)
    return issued


def issue_device_cert(files: CaFiles, device_id: str) -> IssuedCert:
    """A client certificate with CN = device_id; the key is returned, never kept by the cloud."""
    return _sign_leaf(files, device_id, ExtendedKeyUsageOID.CLIENT_AUTH, [])
