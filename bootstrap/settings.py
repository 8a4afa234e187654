"""Configuration from environment variables (and an optional ``.env``), validated at start."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from adapters.jwt.jose_verifier import HMAC_ALGORITHMS, MIN_SECRET_BYTES
from adapters.postgres.engine import DatabaseOptions, DatabaseUrlError

# python-jose (shared secret) verifies these; asymmetric ones need a JWKS verifier.
KNOWN_ALGORITHMS = HMAC_ALGORITHMS | {"RS256", "RS384", "RS512", "ES256", "ES384", "ES512", "EdDSA"}


def _comma_list(value: object) -> object:
    if isinstance(value, str):
        return tuple(item.strip() for item in value.split(",") if item.strip())
    return value


def _blank_is_none(value: object) -> object:
    return None if isinstance(value, str) and not value.strip() else value


class Settings(BaseSettings):
    """Every variable of the contract (API.md, "Running it"), plus pool tuning."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore", frozen=True)

    database_url: SecretStr | None = None
    database_pooler: Literal["transaction", "off"] | None = None
    database_pool_size: int = Field(default=20, ge=1, le=500)
    database_pool_timeout: float = Field(default=3.0, gt=0, le=60)
    database_connect_timeout: float = Field(default=5.0, gt=0, le=60)
    database_statement_timeout: float = Field(default=10.0, gt=0, le=600)
    jwt_secret: SecretStr | None = None
    jwt_jwks_url: str | None = None
    jwt_algorithms: Annotated[tuple[str, ...], NoDecode] = ("HS256",)
    jwt_audience: str | None = None
    jwt_issuer: str | None = None
    jwt_leeway_seconds: int = Field(default=0, ge=0, le=600)
    jwt_user_id_claim: str = Field(default="sub", min_length=1)
    cors_origins: Annotated[tuple[str, ...], NoDecode] = ()
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"

    _split = field_validator("jwt_algorithms", "cors_origins", mode="before")(_comma_list)
    _blank = field_validator(
        "database_url",
        "database_pooler",
        "jwt_secret",
        "jwt_jwks_url",
        "jwt_audience",
        "jwt_issuer",
        mode="before",
    )(_blank_is_none)

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @field_validator("jwt_secret")
    @classmethod
    def _long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value().encode()) < MIN_SECRET_BYTES:
            raise ValueError(f"must be at least {MIN_SECRET_BYTES} bytes")
        return value

    @field_validator("jwt_algorithms")
    @classmethod
    def _known_algorithms(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value:
            raise ValueError("must name at least one algorithm")
        unknown = [name for name in value if name not in KNOWN_ALGORITHMS]
        if unknown:
            raise ValueError(f"unknown or refused algorithm {unknown[0]!r}")
        return value

    @field_validator("database_url")
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

    def shared_secret(self) -> str:
        """The HS secret; raises ``ConfigError`` when no usable verification key is configured."""
        if self.jwt_secret is None:
            if self.jwt_jwks_url is not None:
                raise ConfigError(
                    "JWT_JWKS_URL: JWKS verification is not available in this version; "
                    "set JWT_SECRET"
                )
            raise ConfigError("JWT_SECRET: not set (at least 32 bytes are required)")
        hmac = [name for name in self.jwt_algorithms if name in HMAC_ALGORITHMS]
        if not hmac:
            raise ConfigError("JWT_ALGORITHMS: no shared-secret (HS*) algorithm for JWT_SECRET")
        return self.jwt_secret.get_secret_value()


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
