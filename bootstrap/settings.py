"""Configuration from environment variables (and an optional ``.env``), validated at start."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Annotated, Final, Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from adapters.jwt.jose_verifier import HMAC_ALGORITHMS, MIN_SECRET_BYTES
from adapters.jwt.rules import ASYMMETRIC_ALGORITHMS, DEFAULT_JWKS_ALGORITHMS
from adapters.postgres.engine import DatabaseOptions, DatabaseUrlError

# python-jose verifies HS* with JWT_SECRET; PyJWT verifies the asymmetric ones with JWT_JWKS_URL.
KNOWN_ALGORITHMS = HMAC_ALGORITHMS | ASYMMETRIC_ALGORITHMS
DEFAULT_HMAC_ALGORITHMS = ("HS256",)
MIN_RATE = 0.001  # requests a second: RATE_LIMIT_*_RPS is 0 (off) or at least this


@dataclass(frozen=True, slots=True, kw_only=True)
class TokenVerification:
    """How tokens are verified: a shared secret, a JWKS, or both, each with its algorithms."""

    secret: str | None
    hmac_algorithms: tuple[str, ...]
    jwks_url: str | None
    jwks_algorithms: tuple[str, ...]
    previous_secrets: tuple[str, ...] = ()


def _comma_list(value: object) -> object:
    if isinstance(value, str):
        return tuple(item.strip() for item in value.split(",") if item.strip())
    return value


def _blank_is_none(value: object) -> object:
    return None if isinstance(value, str) and not value.strip() else value


_HOST_NAME: Final = re.compile(r"[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*")
_DEFAULT_PORTS: Final = {"http": 80, "https": 443}


def _is_origin(text: str) -> bool:
    """Whether ``text`` is an origin exactly as a browser sends it (RFC 6454 serialisation)."""
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:  # a port out of range, an unclosed [IPv6
        return False
    hostname = parts.hostname or ""
    try:
        address = ipaddress.ip_address(hostname)
    except ValueError:
        if not _HOST_NAME.fullmatch(hostname):
            return False  # an IDN in its ASCII form; no wildcard, escape or space
        shown = hostname
    else:
        shown = f"[{address.compressed}]" if address.version == 6 else address.compressed  # noqa: PLR2004  # IPv6
    default = port is None or port == _DEFAULT_PORTS.get(parts.scheme)
    canonical = f"{parts.scheme}://{shown}" + ("" if default else f":{port}")
    return parts.scheme in _DEFAULT_PORTS and text == canonical


class Settings(BaseSettings):
    """Every variable of the contract (API.md, "Running it"), plus pool tuning."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore", frozen=True)

    database_url: SecretStr | None = None
    database_direct_url: SecretStr | None = None
    database_pooler: Literal["transaction", "off"] | None = None
    database_pool_size: int = Field(default=20, ge=1, le=500)
    database_pool_timeout: float = Field(default=2.0, gt=0, le=60)
    database_connect_timeout: float = Field(default=2.0, gt=0, le=60)
    database_statement_timeout: float = Field(default=2.5, gt=0, le=600)
    jwt_secret: SecretStr | None = None
    jwt_jwks_url: str | None = None
    jwt_jwks_cache_seconds: int = Field(default=300, ge=1, le=86_400)
    # Unset: HS256 with JWT_SECRET, EdDSA,ES256,RS256 with JWT_JWKS_URL, both with both.
    jwt_algorithms: Annotated[tuple[str, ...] | None, NoDecode] = None
    jwt_audience: str | None = None
    jwt_issuer: str | None = None
    jwt_leeway_seconds: int = Field(default=0, ge=0, le=600)
    jwt_user_id_claim: str = Field(default="sub", min_length=1)
    cursor_secret: SecretStr | None = None
    cursor_previous_secrets: Annotated[tuple[SecretStr, ...], NoDecode] = ()
    jwt_previous_secrets: Annotated[tuple[SecretStr, ...], NoDecode] = ()
    cors_origins: Annotated[tuple[str, ...], NoDecode] = ()
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"
    security_log_max_per_second: int = Field(default=0, ge=0, le=1_000_000)
    metrics_token: SecretStr | None = None
    tasks_per_user_max: int = Field(default=10_000, ge=1, le=1_000_000)
    rate_limit_user_rps: float = Field(default=50, ge=0, le=1_000_000)
    rate_limit_user_burst: int = Field(default=200, ge=0)
    rate_limit_ip_rps: float = Field(default=5, ge=0, le=1_000_000)
    rate_limit_ip_burst: int = Field(default=50, ge=0)
    forwarded_allow_ips: str = "127.0.0.1"
    docs_enabled: bool = True

    _split = field_validator(
        "jwt_algorithms",
        "cors_origins",
        "jwt_previous_secrets",
        "cursor_previous_secrets",
        mode="before",
    )(_comma_list)
    _blank = field_validator(
        "database_url",
        "database_direct_url",
        "database_pooler",
        "jwt_secret",
        "jwt_jwks_url",
        "jwt_audience",
        "jwt_issuer",
        "cursor_secret",
        "metrics_token",
        mode="before",
    )(_blank_is_none)

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @field_validator("jwt_secret", "cursor_secret")
    @classmethod
    def _long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value().encode()) < MIN_SECRET_BYTES:
            raise ValueError(f"must be at least {MIN_SECRET_BYTES} bytes")
        return value

    @field_validator("jwt_previous_secrets", "cursor_previous_secrets")
    @classmethod
    def _each_long_enough(cls, value: tuple[SecretStr, ...]) -> tuple[SecretStr, ...]:
        if any(len(item.get_secret_value().encode()) < MIN_SECRET_BYTES for item in value):
            raise ValueError(f"each secret must be at least {MIN_SECRET_BYTES} bytes")
        return value

    @field_validator("jwt_jwks_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None:
            parts = urlsplit(value.strip())
            if parts.scheme not in {"http", "https"} or not parts.hostname:
                raise ValueError("must be an http:// or https:// URL")
            return value.strip()
        return value

    @field_validator("cors_origins")
    @classmethod
    def _origins(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        # A browser sends its origin as scheme://host[:port], which CORS compares as text: a
        # trailing slash or a path would match no request, silently.
        if value == ("*",):
            return value  # any origin: bearer tokens, not cookies, carry the caller
        for origin in value:
            if not _is_origin(origin):
                raise ValueError(
                    f"{origin!r} is not an origin as browsers send it: scheme://host[:port] in "
                    "lower case, no default port, path or trailing slash, a host name in its "
                    "ASCII form (e.g. https://app.example.com); or * alone for any origin"
                )
        return value

    @field_validator("jwt_algorithms")
    @classmethod
    def _known_algorithms(cls, value: tuple[str, ...] | None) -> tuple[str, ...] | None:
        if value is None:
            return value
        if not value:
            raise ValueError("must name at least one algorithm")
        unknown = [name for name in value if name not in KNOWN_ALGORITHMS]
        if unknown:
            raise ValueError(f"unknown or refused algorithm {unknown[0]!r}")
        return value

    @field_validator("rate_limit_user_rps", "rate_limit_ip_rps")
    @classmethod
    def _off_or_a_rate(cls, value: float) -> float:
        # Slower than one request in 1000 s, a client's wait would not fit in Retry-After.
        if 0 < value < MIN_RATE:
            raise ValueError(f"must be 0 (off) or at least {MIN_RATE}")
        return value

    @field_validator("database_url", "database_direct_url")
    @classmethod
    def _parsable(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            try:
                DatabaseOptions.from_url(value.get_secret_value())
            except DatabaseUrlError as error:
                raise ValueError(str(error)) from None
        return value

    def database(self) -> DatabaseOptions:
        """The database to use; raises ``ConfigError`` when ``DATABASE_URL`` is not set."""
        if self.database_url is None:
            raise ConfigError("DATABASE_URL: not set (a postgresql:// URL is required)")
        pooler = None if self.database_pooler is None else self.database_pooler == "transaction"
        return DatabaseOptions.from_url(
            self.database_url.get_secret_value(),
            pooler=pooler,
            connect_timeout=self.database_connect_timeout,
            statement_timeout=self.database_statement_timeout,
        )

    def listening_database(self) -> DatabaseOptions | None:
        """Where the event streams LISTEN; ``None``: through a transaction pooler only, so poll.

        ``DATABASE_DIRECT_URL`` if set, else ``DATABASE_URL`` unless it goes through a pooler
        (which cannot carry LISTEN).
        """
        if self.database_direct_url is not None:
            return DatabaseOptions.from_url(
                self.database_direct_url.get_secret_value(),
                pooler=False,
                connect_timeout=self.database_connect_timeout,
            )
        options = self.database()
        return None if options.transaction_pooler else options

    def token_verification(self) -> TokenVerification:
        """How to verify tokens; raises ``ConfigError`` when no usable key source is configured.

        ``JWT_SECRET`` takes the HS* algorithms of ``JWT_ALGORITHMS``, ``JWT_JWKS_URL`` the
        asymmetric ones; each configured source needs at least one, so that a list naming only
        one kind never turns the other source off unnoticed.
        """
        secret = None if self.jwt_secret is None else self.jwt_secret.get_secret_value()
        previous = tuple(item.get_secret_value() for item in self.jwt_previous_secrets)
        if previous and secret is None:
            raise ConfigError("JWT_PREVIOUS_SECRETS: set, but there is no JWT_SECRET they precede")
        url = self.jwt_jwks_url
        if secret is None and url is None:
            raise ConfigError(
                "JWT_SECRET or JWT_JWKS_URL: neither is set (a shared secret of at least 32 "
                "bytes, or the JWKS URL of the auth system)"
            )
        if self.jwt_algorithms is None:
            return TokenVerification(
                secret=secret,
                hmac_algorithms=DEFAULT_HMAC_ALGORITHMS if secret is not None else (),
                jwks_url=url,
                jwks_algorithms=DEFAULT_JWKS_ALGORITHMS if url is not None else (),
                previous_secrets=previous,
            )
        hmac: tuple[str, ...] = ()
        asymmetric: tuple[str, ...] = ()
        if secret is not None:
            hmac = tuple(name for name in self.jwt_algorithms if name in HMAC_ALGORITHMS)
        if url is not None:
            asymmetric = tuple(
                name for name in self.jwt_algorithms if name in ASYMMETRIC_ALGORITHMS
            )
        missing = [
            *(["HS* for JWT_SECRET"] if secret is not None and not hmac else []),
            *(["EdDSA/ES*/RS*/PS* for JWT_JWKS_URL"] if url is not None and not asymmetric else []),
        ]
        if missing:
            raise ConfigError(
                f"JWT_ALGORITHMS: no algorithm for a configured key source "
                f"(needs {' and '.join(missing)}; unset the source it should not use)"
            )
        return TokenVerification(
            secret=secret,
            hmac_algorithms=hmac,
            jwks_url=url,
            jwks_algorithms=asymmetric,
            previous_secrets=previous,
        )

    def shared_secret(self) -> str:
        """The HS secret, for signing (``taskapi token``); raises ``ConfigError`` without one."""
        if self.jwt_secret is None:
            if self.jwt_jwks_url is not None:
                raise ConfigError(
                    "JWT_SECRET: not set; only JWT_JWKS_URL is configured, whose tokens the auth "
                    "system signs (this command signs with the shared secret)"
                )
            raise ConfigError("JWT_SECRET: not set (at least 32 bytes are required)")
        self.token_verification()  # with JWT_SECRET set, refuses a JWT_ALGORITHMS without HS*
        return self.jwt_secret.get_secret_value()

    def signing_algorithm(self) -> str:
        """The HS algorithm ``taskapi token`` signs with: the first accepted one."""
        self.shared_secret()
        return self.token_verification().hmac_algorithms[0]


class ConfigError(Exception):
    """The configuration cannot run this command; the message names the variable."""


def load_settings() -> Settings:
    """Read the settings; raises ``ConfigError`` with one line naming the first bad variable."""
    try:
        return Settings()
    except ValidationError as error:
        first = error.errors(include_url=False, include_input=False)[0]
        name = str(first["loc"][0]).upper() if first["loc"] else "configuration"
        message = first["msg"].removeprefix("Value error, ")
        raise ConfigError(f"{name}: {message}") from None
