"""The database password never reaches a server that merely answers on the database's address.

A fake PostgreSQL on a real socket accepts TLS with a self-signed certificate and asks for the
password in clear text (as an impostor would). With Neon's URL as pasted
(``sslmode=require&channel_binding=require``) the service must refuse the certificate first.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import ssl
import struct
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from adapters.postgres.database import Database
from adapters.postgres.engine import DatabaseOptions
from application.errors import StorageUnavailable

PASSWORD = "npg_the-password-to-keep"
SSL_REQUEST = 80877103


def self_signed(directory: Path) -> ssl.SSLContext:
    """A server context with a certificate for 127.0.0.1 that no trust store knows."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=1))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = directory / "cert.pem", directory / "key.pem"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_file, key_file)
    return context


class Impostor:
    """Speaks just enough of PostgreSQL's protocol to be sent a cleartext password."""

    def __init__(self, context: ssl.SSLContext) -> None:
        self.context = context
        self.passwords: list[str] = []
        self.tls_handshakes = 0

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            length, code = struct.unpack("!ii", await reader.readexactly(8))
            if length != 8 or code != SSL_REQUEST:
                return
            writer.write(b"S")
            await writer.drain()
            await writer.start_tls(self.context)
            self.tls_handshakes += 1
            (length,) = struct.unpack("!i", await reader.readexactly(4))
            await reader.readexactly(length - 4)  # the startup message
            writer.write(b"R" + struct.pack("!ii", 8, 3))  # AuthenticationCleartextPassword
            await writer.drain()
            kind = await reader.readexactly(1)
            (length,) = struct.unpack("!i", await reader.readexactly(4))
            if kind == b"p":
                self.passwords.append((await reader.readexactly(length - 4)).rstrip(b"\0").decode())
        except (OSError, asyncio.IncompleteReadError, ssl.SSLError):
            pass  # the client hung up: what it did not send is the point
        finally:
            writer.close()


@pytest.fixture
async def impostor(tmp_path: Path) -> AsyncIterator[tuple[Impostor, int]]:
    fake = Impostor(self_signed(tmp_path))
    server = await asyncio.start_server(fake.serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        yield fake, port


async def _try_to_connect(url: str) -> None:
    database = Database(DatabaseOptions.from_url(url, connect_timeout=3))
    await database.start()
    try:
        with pytest.raises(StorageUnavailable):
            await database.fetch("SELECT 1")
    finally:
        await database.close()


async def test_neons_url_as_pasted_never_hands_the_password_to_an_impostor(
    impostor: tuple[Impostor, int],
) -> None:
    fake, port = impostor
    await _try_to_connect(
        f"postgresql://neondb_owner:{PASSWORD}@127.0.0.1:{port}/neondb"
        "?sslmode=require&channel_binding=require"
    )
    assert fake.passwords == []
    assert fake.tls_handshakes == 0  # the certificate was refused during the handshake


async def test_the_impostor_does_get_the_password_from_require_alone(
    impostor: tuple[Impostor, int],
) -> None:
    # libpq's meaning of sslmode=require (encrypted, not verified), kept on purpose: this is
    # what channel_binding=require protects against, and proof that the impostor works.
    fake, port = impostor
    await _try_to_connect(f"postgresql://owner:{PASSWORD}@127.0.0.1:{port}/db?sslmode=require")
    assert fake.passwords == [PASSWORD]


async def test_verify_full_with_the_impostors_own_certificate_as_root_still_checks_the_host(
    impostor: tuple[Impostor, int], tmp_path: Path
) -> None:
    # Trusting the certificate is not enough: it names 127.0.0.1 only as a common name and
    # localhost as the subject alternative name, so a client verifying 127.0.0.1 refuses it.
    fake, port = impostor
    await _try_to_connect(
        f"postgresql://owner:{PASSWORD}@127.0.0.1:{port}/db"
        f"?sslmode=verify-full&sslrootcert={tmp_path / 'cert.pem'}"
    )
    assert fake.passwords == []
