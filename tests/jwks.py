"""A real JWKS over real HTTP, and real asymmetric keys, for the JWKS verifier's tests.

``JwksServer`` is a ``ThreadingHTTPServer`` on 127.0.0.1 in a thread: it serves whatever key
set (or failure) the test sets at that moment, and counts the requests it got. ``SigningKey``
holds a private key made with ``cryptography`` and signs tokens with PyJWT.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Final

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm

JWKS_PATH: Final = "/api/auth/jwks"
BETTER_AUTH_URL: Final = "https://auth.example.com"

PrivateKey = ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey


@dataclass
class SigningKey:
    """A private key, its ``kid`` and algorithm; signs tokens and shows its public JWK."""

    algorithm: str
    private: PrivateKey
    kid: str = field(default_factory=lambda: uuid.uuid4().hex)

    @classmethod
    def generate(cls, algorithm: str = "EdDSA", kid: str | None = None) -> SigningKey:
        """A fresh key for ``algorithm`` (EdDSA: Ed25519, ES256: P-256, RS*/PS*: RSA 2048)."""
        private: PrivateKey
        if algorithm == "EdDSA":
            private = ed25519.Ed25519PrivateKey.generate()
        elif algorithm == "ES256":
            private = ec.generate_private_key(ec.SECP256R1())
        elif algorithm == "ES384":
            private = ec.generate_private_key(ec.SECP384R1())
        else:
            private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        return cls(algorithm, private, kid or uuid.uuid4().hex)

    def jwk(self, *, with_alg: bool = True, **extra: Any) -> dict[str, Any]:
        """The public key as a JWK, with ``kid`` (and ``alg`` unless told not to)."""
        public = self.private.public_key()
        data: dict[str, Any]
        if isinstance(public, ed25519.Ed25519PublicKey):
            data = OKPAlgorithm.to_jwk(public, as_dict=True)
        elif isinstance(public, ec.EllipticCurvePublicKey):
            data = ECAlgorithm.to_jwk(public, as_dict=True)
        else:
            data = RSAAlgorithm.to_jwk(public, as_dict=True)
        data = {**data, "kid": self.kid}
        if with_alg:
            data["alg"] = self.algorithm
        return {**data, **extra}

    def public_pem(self) -> bytes:
        """The public key in PEM: what an algorithm-confusion attacker would use as a secret."""
        return self.private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def sign(
        self,
        claims: dict[str, Any],
        *,
        kid: str | bool | None = True,
        algorithm: str | None = None,
    ) -> str:
        """A JWT of ``claims`` signed with this key; ``kid=False`` leaves the kid out."""
        headers: dict[str, Any] = {}
        if kid is True:
            headers["kid"] = self.kid
        elif isinstance(kid, str):
            headers["kid"] = kid
        return jwt.encode(
            claims, self.private, algorithm=algorithm or self.algorithm, headers=headers
        )

    def token(
        self, sub: str = "alice", *, ttl: int = 900, kid: str | bool | None = True, **claims: Any
    ) -> str:
        """A token for ``sub``, valid ``ttl`` seconds; a claim passed as ``None`` is left out."""
        now = int(time.time())
        payload: dict[str, Any] = {"sub": sub, "iat": now, "exp": now + ttl, **claims}
        payload = {key: value for key, value in payload.items() if value is not None}
        return self.sign(payload, kid=kid)

    def better_auth_token(self, sub: str = "alice", base_url: str = BETTER_AUTH_URL) -> str:
        """A token shaped exactly like Better Auth's ``jwt()`` plugin makes them."""
        now = int(time.time())
        claims = {"sub": sub, "iat": now, "exp": now + 15 * 60, "iss": base_url, "aud": base_url}
        return jwt.encode(claims, self.private, algorithm="EdDSA", headers={"kid": self.kid})


def jwks(*keys: SigningKey) -> dict[str, Any]:
    """A JWKS document of these keys' public halves."""
    return {"keys": [key.jwk() for key in keys]}


class JwksServer:
    """A JWKS endpoint on 127.0.0.1 whose answer the test changes while it runs."""

    def __init__(self, document: object | None = None, port: int = 0) -> None:
        self.body: bytes = json.dumps(document or {"keys": []}).encode()
        self.status = 200
        self.delay = 0.0
        self.requests = 0
        self._count_lock = threading.Lock()
        self._released = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", port), self._handler())
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        """The TCP port it listens on."""
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """The JWKS URL, Better Auth's path."""
        return f"http://127.0.0.1:{self.port}{JWKS_PATH}"

    def serve(self, document: object) -> None:
        """Answer 200 with ``document`` as JSON from now on."""
        self.body = json.dumps(document).encode()
        self.status = 200

    def start(self) -> JwksServer:
        """Start answering, in a thread."""
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop answering and close the socket (sleeping handlers are woken first)."""
        self._released.set()
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(timeout=5)
        self._server.server_close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                with server._count_lock:
                    server.requests += 1
                if server.delay:
                    server._released.wait(server.delay)
                body = server.body if self.path == JWKS_PATH else b"not found"
                status = server.status if self.path == JWKS_PATH else 404
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except OSError:  # the client gave up waiting: nothing to answer
                    return

            def log_message(self, format: str, *args: Any) -> None:  # the base class names it
                return

        return Handler


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def hmac_token(secret: bytes, *, kid: str | None = None, alg: str = "HS256") -> str:
    """A token signed by hand with HMAC-SHA256 (PyJWT refuses a PEM as an HMAC secret).

    With a public key's PEM or JWK as ``secret``, this is the algorithm-confusion attack.
    """
    header: dict[str, Any] = {"alg": alg, "typ": "JWT"}
    if kid is not None:
        header["kid"] = kid
    now = int(time.time())
    claims = {"sub": "alice", "iat": now, "exp": now + 600}
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
    signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(signature)}"
