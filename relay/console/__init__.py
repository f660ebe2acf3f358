"""The operators' console: ``/console/``, server-rendered pages over the same store functions the
API uses, behind the API's HTTP Basic (``relay.api.auth``).

Reading works without JavaScript; ``static/console.js`` only adds the live tail's updates. Every
POST that changes state carries a token and must come from the console's own origin
(``relay.console.guard``). Nothing is loaded from outside, and no secret is ever rendered.
"""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

from relay.console import dry_run, letters, search, tail, views
from relay.console.state import CONSOLE, Console
from relay.keys import Keys
from relay.settings import Settings
from relay.store.connect import RedisClient

PREFIX = "/console"
STATIC = Path(__file__).parent / "static"


async def _to_console(_: web.Request) -> web.StreamResponse:
    raise web.HTTPPermanentRedirect(PREFIX + "/")


def setup_console(app: web.Application, settings: Settings, redis: RedisClient, keys: Keys) -> None:
    """Mount the console on ``app`` (which must also run the API's middleware)."""
    console = Console(settings=settings, redis=redis, keys=keys)
    app[CONSOLE] = console
    app.router.add_get(PREFIX, _to_console)
    app.router.add_get(PREFIX + "/", views.overview)
    app.router.add_get(PREFIX + "/webhooks", views.webhooks)
    app.router.add_get(PREFIX + "/events", search.page)
    app.router.add_get(PREFIX + "/dead-letters", letters.listing)
    app.router.add_post(PREFIX + "/dead-letters/{id}/replay", letters.replay)
    app.router.add_post(PREFIX + "/dead-letters/{id}/delete", letters.delete)
    app.router.add_get(PREFIX + "/dry-run", dry_run.page)
    app.router.add_get(PREFIX + "/tail", tail.page)
    app.router.add_get(PREFIX + "/tail/stream", tail.stream)
    app.router.add_static(PREFIX + "/static", STATIC, append_version=True)

    async def end_tails(_: web.Application) -> None:
        """Open live tails end when the server shuts down, so they never hold up its grace."""
        console.stopping.set()

    app.on_shutdown.append(end_tails)
