"""relay: CallFire webhook callbacks in, verified and durable on Redis streams, fanned out."""

__version__ = "0.1.0"
