"""A secured OpenSearch for tests: a TLS + basic-auth reverse proxy in front of osmem.

A production cluster answers only over TLS with a certificate from its own CA and refuses
requests without valid credentials; osmem does neither. This proxy gives tests that shape:
``python -m ssg.testing.tls_proxy`` serves HTTPS on loopback with a certificate signed by a CA
generated for the test, answers 401 to a missing or wrong Authorization header, and forwards
every other request to the upstream URL unchanged.
"""

from __future__ import annotations

import argparse
import base64
import datetime
import hmac
import ipaddress
import os
import ssl
import sys
from dataclasses import dataclass
from pathlib import Path

PASSWORD_ENV = "SSG_TLS_PROXY_PASSWORD"
# Hop-by-hop and length headers are the proxy's own business on each side.
_DROPPED_HEADERS = {
    "authorization",
    "connection",
    "content-length",
    "host",
    "keep-alive",
    "transfer-encoding",
    "content-encoding",
}


@dataclass(frozen=True)
class CertificateAuthority:
    """A CA generated for a test: its certificate file (what clients trust) and its key."""

    cert_file: Path
    key_file: Path


@dataclass(frozen=True)
class ServerCertificate:
    """A server certificate for 127.0.0.1 / localhost signed by a test CA."""

    cert_file: Path
    key_file: Path


def certificate_authority(directory: Path, name: str = "ssg-test-ca") -> CertificateAuthority:
    """Generate a self-signed CA (EC P-256, valid one day) into directory."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
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
    directory.mkdir(parents=True, exist_ok=True)
    ca = CertificateAuthority(directory / f"{name}.pem", directory / f"{name}-key.pem")
    _write(ca.cert_file, ca.key_file, cert, key)
    return ca


def server_certificate(ca: CertificateAuthority, directory: Path) -> ServerCertificate:
    """Generate a server certificate for 127.0.0.1 and localhost signed by ca."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    ca_cert = x509.load_pem_x509_certificate(ca.cert_file.read_bytes())
    ca_key = serialization.load_pem_private_key(ca.key_file.read_bytes(), password=None)
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    server = ServerCertificate(directory / "server.pem", directory / "server-key.pem")
    _write(server.cert_file, server.key_file, cert, key)
    return server


def _write(cert_file: Path, key_file: Path, cert: object, key: object) -> None:
    from cryptography.hazmat.primitives import serialization

    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))  # type: ignore[attr-defined]
    key_file.write_bytes(
        key.private_bytes(  # type: ignore[attr-defined]
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    key_file.chmod(0o600)


def basic_auth_header(username: str, password: str) -> str:
    """The Authorization header value of basic authentication."""
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


def serve(
    port: int, upstream: str, server: ServerCertificate, username: str, password: str
) -> None:
    """Serve HTTPS on 127.0.0.1:port until SIGTERM, forwarding authenticated requests."""
    import aiohttp
    from aiohttp import web

    expected = basic_auth_header(username, password).encode()
    base = upstream.rstrip("/")
    session: aiohttp.ClientSession | None = None

    async def forward(request: web.Request) -> web.StreamResponse:
        given = request.headers.get("Authorization", "").encode()
        if not hmac.compare_digest(given, expected):
            return web.json_response(
                {"error": "unauthorized"},
                status=401,
                headers={"WWW-Authenticate": 'Basic realm="opensearch"'},
            )
        assert session is not None
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _DROPPED_HEADERS}
        body = await request.read()
        async with session.request(
            request.method, base + request.path_qs, data=body or None, headers=headers
        ) as reply:
            content = await reply.read()
            kept = {k: v for k, v in reply.headers.items() if k.lower() not in _DROPPED_HEADERS}
            return web.Response(status=reply.status, body=content, headers=kept)

    async def open_session(_: web.Application) -> None:
        nonlocal session
        session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=64), auto_decompress=False
        )

    async def close_session(_: web.Application) -> None:
        if session is not None:
            await session.close()

    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.router.add_route("*", "/{tail:.*}", forward)
    app.on_startup.append(open_session)
    app.on_cleanup.append(close_session)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(server.cert_file, server.key_file)
    web.run_app(app, host="127.0.0.1", port=port, ssl_context=context, print=None, access_log=None)


def main(argv: list[str] | None = None) -> int:
    """``python -m ssg.testing.tls_proxy``; the password comes from SSG_TLS_PROXY_PASSWORD."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream", required=True)
    parser.add_argument("--cert", type=Path, required=True)
    parser.add_argument("--key", type=Path, required=True)
    parser.add_argument("--username", required=True)
    args = parser.parse_args(argv)
    password = os.environ.get(PASSWORD_ENV, "")
    if not password:
        print(f"{PASSWORD_ENV} is required", file=sys.stderr)
        return 2
    serve(args.port, args.upstream, ServerCertificate(args.cert, args.key), args.username, password)
    return 0


if __name__ == "__main__":
    sys.exit(main())
