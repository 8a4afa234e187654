"""``create-login``'s SCRAM-SHA-256 verifier, checked against RFC 7677's worked example."""

from __future__ import annotations

import base64
import hashlib
import hmac

from adapters.postgres.logins import scram_verifier

# RFC 7677, section 3: user "user", password "pencil", and the messages of that exchange.
SALT = "W22ZaJ0SNY7soEsUEjb6gQ=="
NONCE = "rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"
AUTH_MESSAGE = f"n=user,r=rOprNGfwEbeRWgbNEkqO,r={NONCE},s={SALT},i=4096,c=biws,r={NONCE}".encode()
CLIENT_PROOF = "dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
SERVER_SIGNATURE = "6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="


def test_the_verifier_accepts_the_rfc_client_and_signs_as_the_rfc_server() -> None:
    verifier = scram_verifier("pencil", base64.b64decode(SALT))

    scheme, rest = verifier.split("$", 1)
    iterations_and_salt, keys = rest.split("$")
    assert (scheme, iterations_and_salt) == ("SCRAM-SHA-256", f"4096:{SALT}")
    stored_key, server_key = (base64.b64decode(key) for key in keys.split(":"))
    # The server's proof that it knows the password, as the RFC's server sent it.
    assert base64.b64encode(hmac.digest(server_key, AUTH_MESSAGE, "sha256")).decode() == (
        SERVER_SIGNATURE
    )
    # The RFC client's proof recovers a client key whose hash is the stored key.
    signature = hmac.digest(stored_key, AUTH_MESSAGE, "sha256")
    client_key = bytes(
        a ^ b for a, b in zip(base64.b64decode(CLIENT_PROOF), signature, strict=True)
    )
    assert hashlib.sha256(client_key).digest() == stored_key


def test_each_verifier_has_its_own_salt() -> None:
    assert scram_verifier("same password") != scram_verifier("same password")
