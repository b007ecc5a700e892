"""The production broker's TLS listener (deploy/mosquitto) on a real Mosquitto: certificates
bind devices, only AEAD suites, and clients check the broker."""

from __future__ import annotations

import socket
import ssl
from pathlib import Path

import pytest

from tests.support.broker import Secure
from tests.support.mqtt_client import NOT_AUTHORISED, Client, accepted, code
from warmcard.command.pki import CaFiles, init_ca, issue_device_cert
from warmcard.contract import config_topic, events_topic, status_topic

# ---------------------------------------------------------------------------- TLS listener


def _tls_client(clients: list[Client], user: str, password: str | None) -> Client:
    c = Client(user, password)
    clients.append(c)
    return c


def test_tls_device_with_its_certificate_connects(
    secure: Secure, dev: tuple[str, str], clients: list[Client]
) -> None:
    a, _ = dev
    bundle = secure.bundles / a
    c = _tls_client(clients, a, None)
    c.tls(bundle / "ca.crt", bundle / "device.crt", bundle / "device.key")
    assert code(c.connect(secure.broker.tls_port)) == 0
    assert accepted(c.publish(events_topic(a), b"over-tls"))
    assert code(c.publish(events_topic("k-someone-else"), b"x")) == NOT_AUTHORISED


def test_tls_without_client_certificate_refused(
    secure: Secure, dev: tuple[str, str], clients: list[Client]
) -> None:
    a, _ = dev
    c = _tls_client(clients, a, None).tls(secure.bundles / a / "ca.crt")
    assert code(c.connect(secure.broker.tls_port)) is None
    assert not c.connected  # the broker ends the handshake: "peer did not return a certificate"


def test_tls_certificate_from_another_ca_refused(
    secure: Secure, dev: tuple[str, str], clients: list[Client], tmp_path: Path
) -> None:
    a, _ = dev
    rogue = CaFiles(tmp_path / "rogue")
    init_ca(rogue)
    issued = issue_device_cert(rogue, a)
    (tmp_path / "d.crt").write_bytes(issued.cert_pem)
    (tmp_path / "d.key").write_bytes(issued.key_pem)
    c = _tls_client(clients, a, None)
    c.tls(secure.bundles / a / "ca.crt", tmp_path / "d.crt", tmp_path / "d.key")
    assert code(c.connect(secure.broker.tls_port)) is None
    assert not c.connected


def test_a_certificate_speaks_only_for_its_own_device(
    secure: Secure, dev: tuple[str, str], clients: list[Client]
) -> None:
    """Issue #9.2: A's certificate with B's username (and any password) is A, never B: the
    username is the certificate's CN. Before, it connected and published as B (PUBACK 0x00)."""
    a, b = dev
    bundle = secure.bundles / a
    c = _tls_client(clients, b, "b-password-guess")
    c.tls(bundle / "ca.crt", bundle / "device.crt", bundle / "device.key")
    assert code(c.connect(secure.broker.tls_port)) == 0
    assert code(c.publish(events_topic(b), b"as-b")) == NOT_AUTHORISED
    assert code(c.publish(status_topic(b), b"as-b")) == NOT_AUTHORISED
    assert code(c.subscribe(config_topic(b))) == NOT_AUTHORISED
    assert accepted(c.publish(events_topic(a), b"as-a"))


@pytest.mark.parametrize(
    ("cipher", "admitted"),
    [
        ("ECDHE-ECDSA-AES128-GCM-SHA256", True),
        ("ECDHE-ECDSA-CHACHA20-POLY1305", True),
        ("ECDHE-ECDSA-AES128-SHA256", False),  # CBC
        ("ECDHE-ECDSA-AES256-SHA", False),  # CBC, SHA-1
    ],
)
def test_tls12_admits_aead_suites_only(
    secure: Secure, dev: tuple[str, str], clients: list[Client], cipher: str, admitted: bool
) -> None:
    a, _ = dev
    bundle = secure.bundles / a
    ctx = ssl.create_default_context(cafile=str(bundle / "ca.crt"))
    ctx.load_cert_chain(bundle / "device.crt", bundle / "device.key")
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_ciphers(cipher + ":@SECLEVEL=0")
    with socket.create_connection(("127.0.0.1", secure.broker.tls_port), timeout=5) as raw:
        try:
            with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
                negotiated = tls.cipher()
        except ssl.SSLError:
            negotiated = None
    assert (negotiated is not None) == admitted, negotiated
    if admitted:
        assert negotiated is not None and negotiated[0] == cipher


def test_tls_client_refuses_a_broker_it_does_not_trust(
    secure: Secure, dev: tuple[str, str], clients: list[Client], tmp_path: Path
) -> None:
    a, _ = dev
    other = CaFiles(tmp_path / "other")
    init_ca(other)
    bundle = secure.bundles / a
    c = _tls_client(clients, a, None)
    c.tls(other.ca_cert, bundle / "device.crt", bundle / "device.key")
    assert code(c.connect(secure.broker.tls_port)) is None
