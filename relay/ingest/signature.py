"""The signature check of a callback: which configured secret signed it, and whether that secret
may sign for the callback's webhook. Pure; every secret is tried (``relay.signing``)."""

from __future__ import annotations

from relay.secrets import CallfireSecrets
from relay.signing import CALLFIRE_HEADER, matching_secret

UNSIGNED = b""
"""What ``signer`` gives for an unsigned callback when ``RELAY_ALLOW_UNSIGNED`` accepts it."""
BAD_SIGNATURE = f"missing or wrong {CALLFIRE_HEADER}"
WRONG_WEBHOOK = f"{CALLFIRE_HEADER} is not valid for this webhookId"


class SignatureCheck:
    def __init__(self, secrets: CallfireSecrets, *, allow_unsigned: bool) -> None:
        self.secrets = secrets
        self.all_secrets = secrets.all()
        self.allow_unsigned = allow_unsigned

    def signer(self, header: str | None, body: bytes) -> bytes | None:
        """The secret that signed ``body``; ``UNSIGNED`` for an unsigned body that is allowed;
        None when the signature is missing or wrong."""
        if header is None and self.allow_unsigned:
            return UNSIGNED
        return matching_secret(header, body, self.all_secrets)

    def may_sign(self, secret: bytes, webhook_id: int | None) -> bool:
        """False when ``secret`` is bound to other webhook ids than ``webhook_id``'s."""
        return secret == UNSIGNED or secret in self.secrets.allowed_for(webhook_id)
