"""Webhook secrets sealed at rest with Fernet (``RELAY_SECRET_KEYS``). No I/O but a log line.

A stored secret is either plain text (no keys were set when it was written) or a Fernet token,
sealed with the first key; any key opens it. In a ``Webhook`` read from Redis a sealed secret is a
``SealedSecret``: it holds the token, which nothing signs with (``Prepared`` refuses it).
``seal`` and ``unseal`` are the pair; ``reseal`` moves a token under the first key (rotation).

``Opener`` is the worker's side: its view opens each webhook's secret once, when the webhook is
read (``relay.webhooks.view``), so a delivery decrypts nothing. Other readers (the API, the
console) never open a secret.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import structlog
from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from pydantic import SecretStr

if TYPE_CHECKING:
    from relay.webhooks.model import Webhook

log = structlog.get_logger("relay.webhooks")


class SecretUnreadable(Exception):
    """A delivery's webhook holds a secret no configured key opens: nothing may be sent."""


class SealedSecret(SecretStr):
    """A webhook secret as Redis holds it: a Fernet token, never a key to sign with (its value is
    the token). Shown as ``**********`` like any secret."""

    @property
    def token(self) -> str:
        return self.get_secret_value()


def seal(secret: SecretStr, keys: MultiFernet) -> SealedSecret:
    """``secret`` sealed with the first key (a sealed one is left as it is)."""
    if isinstance(secret, SealedSecret):
        return secret
    return SealedSecret(keys.encrypt(secret.get_secret_value().encode()).decode())


def unseal(sealed: SealedSecret, keys: MultiFernet | None) -> SecretStr | None:
    """The secret in ``sealed``; None when no key opens it (or there are no keys)."""
    if keys is None:
        return None
    try:
        return SecretStr(keys.decrypt(sealed.token.encode()).decode())
    except InvalidToken:
        return None


def reseal(secret: SecretStr, keys: MultiFernet, first: Fernet) -> SealedSecret | None:
    """``secret`` sealed under the first key ``first`` of ``keys``: a plain one sealed, a token of
    another key re-encrypted, one of ``first`` returned as it is. None when no key opens it."""
    if not isinstance(secret, SealedSecret):
        return seal(secret, keys)
    token = secret.token.encode()
    try:
        first.decrypt(token)
        return secret
    except InvalidToken:
        pass
    try:
        return SealedSecret(keys.rotate(token).decode())
    except InvalidToken:
        return None


class Opener:
    """Opens webhooks' sealed secrets with the configured keys; logs the ones no key opens."""

    def __init__(self, keys: MultiFernet | None) -> None:
        self.keys = keys

    def open(self, webhook: Webhook) -> Webhook:
        """The webhook with its secret opened; left sealed (and logged) when no key opens it."""
        secret = webhook.secret
        if not isinstance(secret, SealedSecret):
            return webhook
        plain = unseal(secret, self.keys)
        if plain is None:
            log.error(
                "webhook secret unreadable: no key of RELAY_SECRET_KEYS opens it; its deliveries "
                "are retried on the schedule, unsent",
                webhook_id=webhook.id,
            )
            return webhook
        return webhook.model_copy(update={"secret": plain})
