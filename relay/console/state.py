"""What the console's handlers share: the stores, the rate sampler, the templates, and the two
steps every page takes at the edge (rendering, and guarding a POST)."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import jinja2
from aiohttp import web

from relay.console.guard import make_token, same_origin, token_valid
from relay.console.rates import RateSampler
from relay.keys import Keys
from relay.secrets import basic_pair
from relay.settings import Settings
from relay.store.attempts import Attempts
from relay.store.connect import RedisClient
from relay.store.dead_letters import DeadLetters
from relay.store.webhooks import WebhookStore


def when(ms: int | None) -> str:
    """Unix ms as ``2026-12-02 11:40:05 UTC``; an em dash for none."""
    if ms is None:
        return "\u2014"
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def age(seconds: float | None) -> str:
    """A duration as people read it: ``850 ms``, ``12 s``, ``4 min``, ``3 h``, ``2 d``."""
    if seconds is None:
        return "\u2014"
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    for size, unit in ((86400, "d"), (3600, "h"), (60, "min")):
        if seconds >= size:
            return f"{seconds / size:.1f} {unit}"
    return f"{seconds:.0f} s"


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("relay.console", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )
    env.filters["when"] = when
    env.filters["age"] = age
    return env


@dataclass(kw_only=True)
class Console:
    settings: Settings
    redis: RedisClient
    keys: Keys
    templates: jinja2.Environment = field(default_factory=_environment)
    sampler: RateSampler = field(default_factory=RateSampler)
    stopping: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def webhooks(self) -> WebhookStore:
        return WebhookStore(self.redis, self.keys)

    @property
    def dead_letters(self) -> DeadLetters:
        return DeadLetters(self.redis, self.keys)

    @property
    def attempts(self) -> Attempts:
        return Attempts(redis=self.redis, keys=self.keys, kept=self.settings.attempts_kept)

    def render(
        self, request: web.Request, template: str, *, status: int = 200, **context: Any
    ) -> web.Response:
        """A page, with what every page needs: where it is, and the token its forms carry."""
        pair = basic_pair(request.headers.get("Authorization"))
        token = make_token(pair, int(time.time())) if pair is not None else ""
        context.setdefault("notice", "")
        page = self.templates.get_template(template).render(path=request.path, csrf=token, **context)
        response = web.Response(status=status, text=page, content_type="text/html")
        response.headers["Cache-Control"] = "no-store"
        response.headers["X-Frame-Options"] = "DENY"
        response.headers["Content-Security-Policy"] = CSP
        response.headers["Referrer-Policy"] = "same-origin"
        return response

    def refusal(self, request: web.Request, form: Any) -> str | None:
        """Why a state-changing POST must be refused (None: it may proceed)."""
        problem = same_origin(request.headers, request.headers.get("Host"))
        if problem is not None:
            return f"cross-site request refused: {problem}"
        pair = basic_pair(request.headers.get("Authorization"))
        if not token_valid(form.get("csrf"), pair, int(time.time())):
            return "the form's token is missing, expired or not yours: reload the page and try again"
        return None


CONSOLE = web.AppKey("console", Console)

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
"""Only the console's own files: no inline script, nothing from another origin."""
