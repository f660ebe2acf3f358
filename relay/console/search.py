"""The event search page: retained events by CallFire resource id (exact, even past 2**53), and
where each went, per webhook. It is ``/v2/events`` with a face: the same search
(``relay.store.event_log``) and the same account of each event (``relay.api.events.described``)."""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web
from pydantic import ValidationError

from relay.api.events import EventsQuery, chooser, described
from relay.console.state import CONSOLE
from relay.store.event_log import EventLog

PAGE = 20


def _params(query: dict[str, str]) -> tuple[EventsQuery | None, str]:
    """The search asked for (None when nothing was), or why it cannot be run."""
    fields = ("resourceId", "resourceType", "eventType")
    asked = {k: v.strip() for k, v in query.items() if k in fields and v.strip()}
    if not asked:
        return None, ""
    try:
        return EventsQuery.model_validate(asked), ""
    except ValidationError as exc:
        return None, "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())


async def page(request: web.Request) -> web.Response:
    console = request.app[CONSOLE]
    params, problem = _params(dict(request.query))
    events: list[dict[str, Any]] = []
    total = 0
    if params is not None:
        found = await EventLog(console.redis, console.keys).search(None, None, chooser(params))
        total = len(found)
        events = await described(request, found[:PAGE], None)
    names = {w.id: w.name or "" for w in await console.webhooks.all()}
    for event in events:
        event["json"] = orjson.dumps(event.pop("event"), option=orjson.OPT_INDENT_2).decode()
    return console.render(
        request,
        "events.html",
        asked={k: request.query.get(k, "") for k in ("resourceId", "resourceType", "eventType")},
        searched=params is not None,
        problem=problem,
        events=events,
        total=total,
        shown=PAGE,
        names=names,
        retention=console.settings.stream_retention,
        status=400 if problem else 200,
    )
