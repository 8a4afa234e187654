"""``GET /api/{user_id}/events``: the change feed as Server-Sent Events, pushed as it happens.

A stream reads its owner's feed (the same use case as ``listChanges``) whenever the process hears
that the feed may have moved (``ChangeHub``: LISTEN, or a poll), and sends each change with the
sync token after it as its ``id``, so ``Last-Event-ID`` resumes without loss. FastAPI writes the
SSE framing; the stream sends a comment line after 10 s of silence. Everything that can be
refused (the token, the owner, ``since``, the stream limit, an expired token) is decided before
the first byte, as an ordinary problem response.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated, Final

from fastapi import APIRouter, Depends, Header, Query
from fastapi.exceptions import RequestValidationError
from fastapi.sse import EventSourceResponse, ServerSentEvent
from pydantic.json_schema import SkipJsonSchema

from adapters.http.cursor import MAX_CURSOR_LENGTH, InvalidCursor, SyncTokenCodec
from adapters.http.dependencies import (
    AuthenticatedFirst,
    CurrentPrincipal,
    Owner,
    one_value_each,
    provided,
)
from adapters.http.openapi import HEADERS, problems
from adapters.http.schemas import change_json
from application.errors import StorageUnavailable
from application.events import ChangeHub, EventStreams, StreamPlace
from application.sync import ChangePage, FeedPosition, SyncTokenExpired
from application.tasks import ListChanges
from domain.task import UserId

events_router = APIRouter(
    prefix="/api/{user_id}/events", tags=["sync"], route_class=AuthenticatedFirst
)

PAGE: Final = 100
HEARTBEAT: Final = 10.0
"""Seconds of silence before a comment line (the contract asks for one at least every 15 s)."""

Hub = Annotated[ChangeHub, Depends(provided("change_hub", ChangeHub))]
Streams = Annotated[EventStreams, Depends(provided("event_streams", EventStreams))]
Tokens = Annotated[SyncTokenCodec, Depends(provided("sync_tokens", SyncTokenCodec))]
Changes = Annotated[ListChanges, Depends(provided("list_changes", ListChanges))]


@dataclass(slots=True)
class Stream:
    """An open stream's state: whose, where it stands, its place, when its token expires."""

    owner: UserId
    place: StreamPlace
    first: ChangePage | None  # handed to the stream once, then dropped: a long stream holds no page
    expires_at: float | None


async def open_stream(
    *,
    owner: Owner,
    principal: CurrentPrincipal,
    streams: Streams,
    tokens: Tokens,
    changes: Changes,
    since: Annotated[
        str | SkipJsonSchema[None],
        Query(max_length=MAX_CURSOR_LENGTH, description="A sync token to start after"),
    ] = None,
    last_event_id: Annotated[
        str | SkipJsonSchema[None],
        Header(
            alias="Last-Event-ID",
            max_length=MAX_CURSOR_LENGTH,
            description="The id of the last event received (wins over `since`)",
        ),
    ] = None,
) -> AsyncIterator[Stream]:
    """Take one of the owner's stream places (429 past the limit) and read the first page."""
    position: FeedPosition | None = None
    # An empty Last-Event-ID is none (SSE); an empty since is a bad token, as on listChanges.
    token, field = (last_event_id, "Last-Event-ID") if last_event_id else (since, "since")
    if token is not None:
        try:
            position = tokens.decode(token, owner)
        except InvalidCursor as error:
            loc = ("header", field) if field == "Last-Event-ID" else ("query", field)
            raise RequestValidationError(
                [{"type": "value_error", "loc": loc, "msg": str(error)}]
            ) from None
    async with streams.open(owner) as place:  # TooManyStreams: 429 before anything is sent
        first = await changes.execute(owner, since=position, limit=PAGE)  # 410, 503 likewise
        yield Stream(owner, place, first, principal.expires_at)


@events_router.get(
    "",
    operation_id="streamEvents",
    dependencies=[Depends(one_value_each("since"))],
    summary="The user's changes as Server-Sent Events, live, resumable with Last-Event-ID",
    response_class=EventSourceResponse,
    responses={
        200: {
            "headers": {"X-Accel-Buffering": HEADERS["X-Accel-Buffering"]},
            "description": "`event: change`, `id`: the sync token after it, `data`: one change "
            "of `listChanges` (an `UpsertOut` or a `DeleteOut`) as JSON; a comment line after 10 s "
            "of silence; `event: token_expired` last when the bearer token expires "
            "(`event: sync_token_expired` if the stream outlives the remembered deletions)",
        },
        **problems(400, 401, 403, 410),
    },
)
async def stream_events(
    stream: Annotated[Stream, Depends(open_stream)],
    hub: Hub,
    tokens: Tokens,
    changes: Changes,
) -> AsyncIterator[ServerSentEvent]:
    """`event: change` per change (`id`: the sync token after it), in commit order.

    A change committed through any replica arrives within a second. The stream ends with
    `event: token_expired` when the bearer token expires, and closes when the server shuts down
    or loses the database: reconnect with `Last-Event-ID` to resume without loss.
    """
    page, stream.first = stream.first, None
    assert page is not None  # noqa: S101  # open_stream always reads the first page
    last_sent = time.monotonic()
    while True:
        for shown, change in enumerate(page.changes, start=1):
            yield ServerSentEvent(
                id=tokens.encode(stream.owner, page.position_after(shown)),
                event="change",
                raw_data=change_json(change).decode(),
            )
            last_sent = time.monotonic()
        position = page.end
        while not page.has_more:  # wait for a change; a comment after HEARTBEAT s of silence
            left = None if stream.expires_at is None else stream.expires_at - time.time()
            if left is not None and left <= 0:
                yield ServerSentEvent(event="token_expired", raw_data='{"code":"token_expired"}')
                return
            # Counted from the last line sent, not the last wake: a wake may bring nothing.
            quiet = HEARTBEAT - (time.monotonic() - last_sent)
            if quiet <= 0:
                yield ServerSentEvent(comment="ping")
                last_sent = time.monotonic()
                continue
            try:
                wait = quiet if left is None else min(left, quiet)
                await asyncio.wait_for(stream.place.wake.wait(), timeout=wait)
            except TimeoutError:
                continue
            if hub.closing or stream.place.lost:  # the client reconnects where it stood
                return
            stream.place.wake.clear()  # before reading: a change committed meanwhile wakes it
            break
        try:
            page = await changes.execute(stream.owner, since=position, limit=PAGE)
        except StorageUnavailable:
            return  # the client resumes from its last id once the database is back
        except SyncTokenExpired:  # open for longer than deletions are remembered
            yield ServerSentEvent(
                event="sync_token_expired", raw_data='{"code":"sync_token_expired"}'
            )
            return
