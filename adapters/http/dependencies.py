"""The dependencies every route shares: the caller, the owner, the task id, and the use cases.

FastAPI runs a route's dependencies before it validates its parameters and body, so the contract's
order of checks holds by construction: 401 (``CurrentPrincipal``), then 403 (``Owner``), then 400
(typed parameters and body), then 404 (the use case). It reads the body before any of them, so
routes with a body authenticate first (``AuthenticatedFirst``).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Coroutine
from typing import Annotated, Any, Final, TypeVar, cast

from fastapi import Depends, Path, Request, Response, Security
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from fastapi.security import HTTPBearer
from pydantic import BeforeValidator

from adapters.http.rate_limits import RateLimits
from adapters.http.schemas import USER_ID_SCHEMA, url_integer
from application.auth import Authenticate, authorise_owner
from application.errors import AuthenticationFailed
from application.ports import Principal
from domain.task import TASK_ID_MAX, UserId

_Provided = TypeVar("_Provided")


def provided(name: str, kind: type[_Provided]) -> Callable[[Request], Awaitable[_Provided]]:
    """A dependency that takes ``name`` from the container bootstrap put on ``app.state``.

    By string id, so adapters never import bootstrap; ``async`` because FastAPI runs a plain
    callable (dependency-injector's ``Provide`` marker is one) in a thread pool.
    """

    async def resolve(request: Request) -> _Provided:
        return cast("_Provided", getattr(request.app.state.container, name)())

    resolve.__name__ = f"provided_{name}"
    return resolve


_authenticate: Final = provided("authenticate", Authenticate)
_rate_limits: Final = provided("rate_limits", RateLimits)


class BearerAuthentication(HTTPBearer):
    """The ``Authorization: Bearer`` scheme: the caller the token proves (401 otherwise).

    A subclass of FastAPI's scheme, so that the OpenAPI document declares it, which also tells a
    missing header from a malformed one (the contract gives them different challenges) and
    verifies the token in the same step.
    """

    async def __call__(self, request: Request) -> Principal:  # type: ignore[override]  # the proven caller, not the raw credentials
        proven: Principal | None = getattr(request.state, "principal", None)
        if proven is not None:  # already proven (and counted) before the body was read
            return proven
        authenticate = await _authenticate(request)
        limits = await _rate_limits(request)
        try:
            principal = await authenticate.execute(bearer_token(request))
        except AuthenticationFailed:
            # Failed attempts are limited by address: a flood of bad tokens becomes 429s, not
            # a flood of verifications and security log lines.
            limits.per_address.take(request.client.host if request.client else "")
            raise
        request.state.subject = principal.user_id
        limits.per_user.take(principal.user_id)
        request.state.principal = principal
        return principal


def bearer_token(request: Request) -> str | None:
    """The token of the ``Authorization`` header; ``None`` when there is none."""
    given = request.headers.getlist("authorization")
    if len(given) > 1:  # which one counts? A proxy may have read the other
        raise AuthenticationFailed("more than one authorization header")
    header = given[0] if given else None
    if header is None or not header.strip():
        return None
    scheme, _, token = header.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer":
        raise AuthenticationFailed("malformed authorization header")
    return token or None  # "Bearer" alone gives no token: no token was given


current_principal: Final = BearerAuthentication(
    scheme_name="bearer", bearerFormat="JWT", description="A JWT from the auth system"
)
CurrentPrincipal = Annotated[Principal, Security(current_principal)]


class DuplicateKey(json.JSONDecodeError):
    """A JSON object names ``key`` twice (RFC 7493 forbids it; which value counts is a guess)."""

    def __init__(self, key: str) -> None:
        super().__init__(f"duplicate key {key!r}", "", 0)
        self.key = key


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    found = dict(pairs)
    if len(found) < len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise DuplicateKey(key)
            seen.add(key)
    return found


class UniqueKeysRequest(Request):
    """A request whose JSON body may not name a key twice.

    Python's parser keeps the last value; a proxy or a log reader may have read the first.
    """

    async def json(self) -> Any:  # noqa: ANN401  # Starlette's signature: any JSON value
        """The body parsed as JSON; ``DuplicateKey`` (a decode error) for a key given twice."""
        if not hasattr(self, "_json"):
            self._json = json.loads(await self.body(), object_pairs_hook=_unique_keys)
        return self._json


class AuthenticatedFirst(APIRoute):
    """A route that proves its caller (401, or 429 by the rate limits) before its body is read.

    FastAPI reads and parses a body before it solves any dependency; a caller refused anyway
    should not make the service wait for, hold and parse up to 64 KiB of it first. The body is
    then read as a ``UniqueKeysRequest``.
    """

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        """FastAPI's handler, after ``current_principal`` when the route takes a body."""
        handler = super().get_route_handler()
        if self.body_field is None:
            return handler

        async def authenticated_first(request: Request) -> Response:
            await current_principal(request)
            return await handler(UniqueKeysRequest(request.scope, request.receive))

        return authenticated_first


async def owner(
    principal: CurrentPrincipal,
    user_id: Annotated[
        str,
        Path(
            description="The user whose tasks these are: the token's user",
            json_schema_extra=USER_ID_SCHEMA,
        ),
    ],
) -> UserId:
    """The owner named by the path, who must be the caller (403 otherwise)."""
    return authorise_owner(principal, user_id)


Owner = Annotated[UserId, Depends(owner)]


def one_value_each(*names: str) -> Callable[..., Awaitable[None]]:
    """A dependency: 400 when one of these query parameters comes twice with different values.

    Starlette keeps the last of a repeated key, and which one the client meant is a guess; the same
    value twice (a client appending what a `Link` already holds) is no ambiguity. It depends on
    ``owner``, so the 401 and 403 still come first.
    """

    async def one_value(request: Request, _: Owner) -> None:
        for name in names:
            if len(set(request.query_params.getlist(name))) > 1:
                raise RequestValidationError(
                    [
                        {
                            "type": "value_error",
                            "loc": ("query", name),
                            "msg": "is given more than once, with different values",
                        }
                    ]
                )

    return one_value


TaskId = Annotated[
    int,
    Path(
        ge=1,
        le=TASK_ID_MAX,
        description="A task id (anything that is not one of yours is a 404)",
        json_schema_extra={"format": "int64"},
        examples=[17],
    ),
    BeforeValidator(url_integer),
]
"""A task id in the path. Invalid ones are answered 404 (see ``problems``), after any 400."""
