"""The console's dry run: ``POST /v2/webhooks/dry-run`` as a form, with the same checks and the
same scan (``relay.api.dry_run.scanned``). It only reads, so its form is a GET: no token, and it
works without JavaScript."""

from __future__ import annotations

import json
import time
from typing import Any

from aiohttp import web
from pydantic import ValidationError

from relay.api.dry_run import DryRunBody, scanned
from relay.api.http import describe
from relay.console.state import CONSOLE
from relay.webhooks.dry_run import SCAN_LIMIT

FIELDS = ("resource", "events", "filter", "fields", "since")
HOUR_MS = 3_600_000


def body_of(form: dict[str, str]) -> DryRunBody:
    """The form as the API's body. Raises ValueError naming the field (``filter: ...``)."""
    webhook: dict[str, Any] = {
        "resource": form["resource"].strip(),
        "events": [e.strip() for e in form["events"].split(",") if e.strip()],
    }
    if form["filter"].strip():
        try:
            webhook["filter"] = json.loads(form["filter"])
        except ValueError:
            raise ValueError("webhook.filter: is not valid JSON") from None
    if form["fields"].strip():
        webhook["fields"] = form["fields"].strip()
    try:
        since = int(form["since"].strip())
    except ValueError:
        raise ValueError("since: must be an integer (unix ms)") from None
    try:
        return DryRunBody.model_validate_json(json.dumps({"webhook": webhook, "since": since}))
    except ValidationError as exc:
        raise ValueError(describe(exc, "form")) from None


async def page(request: web.Request) -> web.Response:
    console = request.app[CONSOLE]
    form = {name: request.query.get(name, "") for name in FIELDS}
    asked = "resource" in request.query
    if not asked:
        form.update(resource="OutboundCall", events="Finished", since=str(int(time.time() * 1000) - HOUR_MS))
    context: dict[str, Any] = {"form": form, "run": None, "error": "", "limit": SCAN_LIMIT}
    if asked:
        try:
            body = body_of(form)
        except ValueError as exc:
            return console.render(request, "dry_run.html", status=400, **{**context, "error": str(exc)})
        run = await scanned(console.redis, console.keys, body)
        items = [(s, s.body.decode()) for s in run.samples]
        context.update(run=run, items=items)
    return console.render(request, "dry_run.html", **context)
