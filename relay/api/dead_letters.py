"""``/v2/dead-letters``: list, show, replay and delete the deliveries given up on (and poison
entries), over HTTP; ``relay dead-letters`` does the same from a shell, through the same store
(``relay.store.dead_letters``)."""

from __future__ import annotations

import structlog
from aiohttp import web

from relay.api import http
from relay.api.recovery_schemas import (
    DeadLetterDetail,
    DeadLetterPage,
    DeadLettersQuery,
    ReplayBody,
    ReplayResult,
)
from relay.api.registry import ERROR_RESPONSES, WEBHOOK_STORE, Operation, PathParam, Response
from relay.api.schemas import ErrorResponse, FieldsQuery
from relay.errors import ApiError
from relay.store.dead_letters import LETTER_ID, DeadLetters, LetterQuery

log = structlog.get_logger("relay.api")

NOTHING_CHOSEN = (
    "body: name the dead letters to replay: ids, a filter (webhookId, kind, since, until), "
    'or {"all": true} for every one'
)


def letters_of(request: web.Request) -> DeadLetters:
    store = request.app[WEBHOOK_STORE]
    return DeadLetters(store.redis, store.keys)


def letter_id(request: web.Request) -> str:
    text = request.match_info["id"]
    if not LETTER_ID.fullmatch(text):  # one past 64 bits fits the pattern: no such letter, 404
        raise ApiError(400, "id: must be a dead letter id such as 1700000000000-0")
    return text


async def find_dead_letters(request: web.Request) -> web.Response:
    params = http.query(request, DeadLettersQuery)
    query = LetterQuery(webhook_id=params.webhookId, kind=params.kind, since=params.since, until=params.until)
    limit = params.page_limit
    total, page = await letters_of(request).find(query, params.offset, limit)
    items = [letter.summary() for letter in page]
    data = {"items": items, "limit": limit, "offset": params.offset, "totalCount": total}
    return http.json_response(data, fields=params.fields)


async def get_dead_letter(request: web.Request) -> web.Response:
    found = letter_id(request)
    params = http.query(request, FieldsQuery)
    letter = await letters_of(request).get(found)
    if letter is None:
        raise ApiError(404, f"no dead letter with id {found}")
    detail = letter.detail()
    webhook = None
    if letter.webhook_id is not None:
        webhook = await request.app[WEBHOOK_STORE].get(letter.webhook_id)
    detail["webhook"] = None if webhook is None else webhook.out()
    return http.json_response(detail, fields=params.fields)


def chosen(body: ReplayBody) -> LetterQuery | list[str]:
    """The letters a replay names: ids, or a query; 400 for none, or for both."""
    if body.all and (body.ids is not None or body.filtered()):
        raise ApiError(400, "all: cannot be combined with ids or a filter")
    if body.ids is not None and body.filtered():
        raise ApiError(400, "ids: cannot be combined with a filter (webhookId, kind, since, until)")
    if body.ids is not None:
        if not body.ids:
            raise ApiError(400, "ids: must name at least one dead letter")
        return body.ids
    if body.filtered() or body.all:
        return LetterQuery(webhook_id=body.webhookId, kind=body.kind, since=body.since, until=body.until)
    raise ApiError(400, NOTHING_CHOSEN)


async def replay_dead_letters(request: web.Request) -> web.Response:
    which = chosen(await http.body(request, ReplayBody))
    letters = letters_of(request)
    if isinstance(which, list):
        replayed, skipped = await letters.replay_ids(which)
    else:
        replayed, skipped = await letters.replay_matching(which)
    log.info("dead letters replayed", replayed=replayed, skipped=len(skipped))
    data = {"replayed": replayed, "skipped": [{"id": i, "reason": reason} for i, reason in skipped]}
    return http.json_response(data)


async def delete_dead_letter(request: web.Request) -> web.Response:
    found = letter_id(request)
    if not await letters_of(request).delete([found]):
        raise ApiError(404, f"no dead letter with id {found}")
    log.info("dead letter deleted", letter_id=found)
    return web.Response(status=204)


_ID_SCHEMA = {"type": "string", "pattern": LETTER_ID.pattern.join("^$")}
ID = PathParam("id", _ID_SCHEMA, "A dead letter's id, e.g. 1700000000000-0")
_ERR = ERROR_RESPONSES
_ERR_404 = {**_ERR, 404: Response(description="no such dead letter", model=ErrorResponse)}
_TAGS = ("dead letters",)

OPERATIONS = (
    Operation(
        method="GET",
        path="/v2/dead-letters",
        operation_id="findDeadLetters",
        summary="Find dead letters, newest first",
        handler=find_dead_letters,
        responses={200: Response(description="a page of dead letters", model=DeadLetterPage), **_ERR},
        query=DeadLettersQuery,
        tags=_TAGS,
    ),
    Operation(
        method="POST",
        path="/v2/dead-letters/replay",
        operation_id="replayDeadLetters",
        summary="Deliver dead letters again (by ids, by a filter, or all), each with its webhook-id",
        handler=replay_dead_letters,
        responses={
            200: Response(
                description="how many were replayed; which were skipped, and why", model=ReplayResult
            ),
            **_ERR,
        },
        body=ReplayBody,
        tags=_TAGS,
    ),
    Operation(
        method="GET",
        path="/v2/dead-letters/{id}",
        operation_id="getDeadLetter",
        summary="A dead letter: its event, its webhook and each attempt",
        handler=get_dead_letter,
        responses={200: Response(description="the dead letter", model=DeadLetterDetail), **_ERR_404},
        query=FieldsQuery,
        path_params=(ID,),
        tags=_TAGS,
    ),
    Operation(
        method="DELETE",
        path="/v2/dead-letters/{id}",
        operation_id="deleteDeadLetter",
        summary="Delete a dead letter",
        handler=delete_dead_letter,
        responses={204: Response(description="deleted"), **_ERR_404},
        path_params=(ID,),
        tags=_TAGS,
    ),
)
