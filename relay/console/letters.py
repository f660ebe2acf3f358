"""The dead letters page: newest first, filtered by webhook or kind, each with a replay and a
delete button. Both buttons are POSTs through ``Console.refusal`` (token and same origin), then
the store's own replay and delete (the ones ``/v2/dead-letters`` and the CLI use), then a
redirect back to the list, which says what was done."""

from __future__ import annotations

from urllib.parse import urlencode

from aiohttp import web

from relay.console.state import CONSOLE
from relay.store.dead_letters import KINDS, LetterQuery, is_letter_id

PAGE = 50
DONE = {
    "replayed": "Dead letter {id} replayed: its delivery is queued again as a first attempt.",
    "deleted": "Dead letter {id} deleted.",
    "missing": "Dead letter {id} is gone already (replayed or deleted).",
    "poison": "Dead letter {id} holds no event and cannot be replayed.",
}


def _int(text: str | None) -> int | None:
    return int(text) if text is not None and text.isdigit() and len(text) < 19 else None


def _query(params: dict[str, str]) -> LetterQuery:
    kind = params.get("kind")
    return LetterQuery(webhook_id=_int(params.get("webhookId")), kind=kind if kind in KINDS else None)


def _link(query: LetterQuery, **more: str | int) -> str:
    """The list's URL for ``query``, with ``more`` parameters."""
    params: dict[str, str | int] = {}
    if query.webhook_id is not None:
        params["webhookId"] = query.webhook_id
    if query.kind is not None:
        params["kind"] = query.kind
    params.update(more)
    return "/console/dead-letters?" + urlencode(params)


async def listing(request: web.Request) -> web.Response:
    console = request.app[CONSOLE]
    query = _query(dict(request.query))
    offset = _int(request.query.get("offset")) or 0
    total, letters = await console.dead_letters.find(query, offset, PAGE)
    names = {w.id: w.name or "" for w in await console.webhooks.all()}
    done, letter = request.query.get("done", ""), request.query.get("letter", "")
    notice = DONE[done].format(id=letter) if done in DONE and is_letter_id(letter) else ""
    return console.render(
        request,
        "dead_letters.html",
        letters=letters,
        names=names,
        total=total,
        newer=_link(query, offset=max(0, offset - PAGE)) if offset > 0 else "",
        older=_link(query, offset=offset + PAGE) if offset + PAGE < total else "",
        query=query,
        kinds=KINDS,
        notice=notice,
    )


async def _guarded(request: web.Request) -> tuple[LetterQuery, str] | web.Response:
    """The filter to return to and the letter's id; or the refusal page (403)."""
    console = request.app[CONSOLE]
    form = await request.post()
    refusal = console.refusal(request, form)
    if refusal is not None:
        return console.render(request, "refused.html", status=403, reason=refusal)
    fields = {k: v for k, v in form.items() if isinstance(v, str)}
    return _query(fields), request.match_info["id"]


async def replay(request: web.Request) -> web.Response:
    guarded = await _guarded(request)
    if isinstance(guarded, web.Response):
        return guarded
    query, letter_id = guarded
    replayed, skipped = await request.app[CONSOLE].dead_letters.replay_ids([letter_id])
    done = "replayed" if replayed else ("poison" if skipped and "poison" in skipped[0][1] else "missing")
    raise web.HTTPSeeOther(_link(query, done=done, letter=letter_id))


async def delete(request: web.Request) -> web.Response:
    guarded = await _guarded(request)
    if isinstance(guarded, web.Response):
        return guarded
    query, letter_id = guarded
    deleted = await request.app[CONSOLE].dead_letters.delete([letter_id])
    raise web.HTTPSeeOther(_link(query, done="deleted" if deleted else "missing", letter=letter_id))
