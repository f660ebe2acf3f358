"""CallFire's resources and the events each supports (callfire.md section 2), and the relay's own
operational events (``RelayWebhook``, raised by ``relay.delivery.notices``). Pure."""

from __future__ import annotations

RESOURCES: dict[str, tuple[str, ...]] = {
    "OutboundCall": ("Finished",),
    "InboundCall": ("Finished",),
    "OutboundText": ("Finished",),
    "InboundText": ("Finished",),
    "CallBroadcast": ("Started", "Stopped", "Finished"),
    "TextBroadcast": ("Started", "Stopped", "Finished"),
    "CccCampaign": ("Started", "Stopped", "Finished"),
    "ContactList": ("ValidationFinished", "ValidationFailed"),
    "MonthlyRenewal": ("Finished", "Failed"),
    "LowBalance": ("Finished", "Failed"),
    "OutboundTextDeliveryReport": ("Received",),
    "RelayWebhook": ("Disabled", "Failing", "Recovered", "DeadLettered"),
}
OPERATIONAL = "RelayWebhook"
"""The resource of the relay's operational events: about one of its webhooks, not from CallFire."""


def event_key(event: str) -> str:
    """The normalised form events are matched on: ``Finished``, ``FINISHED``, ``finished`` agree."""
    return event.strip().casefold()


def canonical_event(resource: str, event: str) -> str | None:
    """The catalogue's spelling of ``event`` for ``resource``, or None when it is not supported."""
    wanted = event_key(event)
    for name in RESOURCES.get(resource, ()):
        if event_key(name) == wanted:
            return name
    return None
