"""``AlgorithmRoutingVerifier``: one port, two verifiers, chosen by the token's ``alg``."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import jwt

from application.errors import AuthenticationFailed
from application.ports import Principal, TokenVerifier


class AlgorithmRoutingVerifier:
    """Sends each token to the verifier that owns its header's ``alg``.

    With both a shared secret and a JWKS configured, HS* tokens go to the shared-secret verifier
    and asymmetric ones to the JWKS verifier. Nothing but ``alg`` is read before verification,
    and the chosen verifier checks ``alg`` again against its own list, so a header cannot steer
    a public key into an HMAC check (or the reverse).
    """

    def __init__(self, routes: Mapping[str, TokenVerifier]) -> None:
        if not routes:
            raise ValueError("at least one algorithm must be routed")
        self._routes = dict(routes)

    @property
    def algorithms(self) -> Iterable[str]:
        """The accepted algorithms."""
        return sorted(self._routes)

    async def verify(self, token: str) -> Principal:
        try:
            algorithm = jwt.get_unverified_header(token).get("alg")
        except Exception:  # noqa: BLE001  # any parse failure of hostile input is a bad token
            raise AuthenticationFailed("malformed token") from None
        verifier = self._routes.get(algorithm) if isinstance(algorithm, str) else None
        if verifier is None:
            raise AuthenticationFailed("token algorithm not accepted")
        return await verifier.verify(token)
