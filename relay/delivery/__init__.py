"""Delivery: workers that match events to webhooks and forward them, at least once.

The public surface is ``setup_delivery`` (what ``create_app`` calls when a process runs workers)
and ``DeliveryService`` (the same, started and stopped by hand, as tests do). The pure parts
(``policy``, ``message``) hold the rules; ``client`` (over ``http1``, a lean HTTP/1.1 client)
is the outbound HTTP edge; ``dispatch``, ``outcomes`` and ``worker`` compose them with the stores.
"""

from relay.delivery.service import DeliveryService
from relay.delivery.setup import DELIVERY, setup_delivery

__all__ = ["DELIVERY", "DeliveryService", "setup_delivery"]
