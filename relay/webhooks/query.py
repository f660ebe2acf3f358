"""Listing filters as index terms: which index sets a webhook belongs to, which a query reads. Pure.

A webhook is in one index per filterable value (``resource:OutboundCall``, ``event:finished``,
``name:...``, ``callback:...``, ``enabled:1``) and in ``all``; each index is a sorted set of ids
scored by id. A listing pages through the one index its filter names, or intersects several, so
its cost follows the matches and the page, not the size of the table.
"""

from __future__ import annotations

from dataclasses import dataclass

from relay.catalog import event_key
from relay.webhooks.model import Webhook

ALL = "all"
"""The term every webhook has: the index of the whole table, for unfiltered listings."""


@dataclass(frozen=True, kw_only=True)
class WebhookQuery:
    """``GET /v2/webhooks``'s filters and page. ``name``, ``resource`` and ``callback`` match
    exactly, ``event`` case-insensitively."""

    name: str | None = None
    resource: str | None = None
    event: str | None = None
    callback: str | None = None
    enabled: bool | None = None
    offset: int = 0
    limit: int = 100

    def terms(self) -> list[str]:
        """The index terms every match carries; ``all`` alone when nothing is filtered."""
        out: list[str] = []
        if self.name is not None:
            out.append(f"name:{self.name}")
        if self.resource is not None:
            out.append(f"resource:{self.resource}")
        if self.event is not None:
            out.append(f"event:{event_key(self.event)}")
        if self.callback is not None:
            out.append(f"callback:{self.callback}")
        if self.enabled is not None:
            out.append(f"enabled:{int(self.enabled)}")
        return out or [ALL]


def index_terms(webhook: Webhook) -> list[str]:
    """Every index term of ``webhook``; a query's terms are a subset of these when it matches."""
    out = [
        ALL,
        f"resource:{webhook.resource}",
        f"callback:{webhook.callback}",
        f"enabled:{int(webhook.enabled)}",
    ]
    if webhook.name is not None:
        out.append(f"name:{webhook.name}")
    out.extend(sorted({f"event:{event_key(e)}" for e in webhook.events}))
    return out
