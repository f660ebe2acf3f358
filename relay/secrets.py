"""Secret-bearing settings values: parsed once, compared in constant time, never printed."""

from __future__ import annotations

import base64
import functools
import hmac
from dataclasses import dataclass, field

from cryptography.fernet import Fernet, MultiFernet
from pydantic import SecretStr


@dataclass(frozen=True, repr=False)
class CallfireSecrets:
    """``RELAY_CALLFIRE_SECRETS``: bare secrets apply to every CallFire webhook id without a bound
    secret; ``ID:SECRET`` binds a secret to CallFire webhook id ``ID`` only."""

    shared: tuple[bytes, ...] = ()
    bound: dict[int, tuple[bytes, ...]] = field(default_factory=dict)

    @classmethod
    def parse(cls, text: str) -> CallfireSecrets:
        shared: list[bytes] = []
        bound: dict[int, list[bytes]] = {}
        for item in _items(text, "secret"):
            head, sep, tail = item.partition(":")
            if sep and head.strip().isdigit():
                if not tail:
                    raise ValueError(f"webhook id {head.strip()} is bound to an empty secret")
                bound.setdefault(int(head), []).append(tail.encode())
            else:
                shared.append(item.encode())
        return cls(tuple(shared), {k: tuple(v) for k, v in bound.items()})

    def __bool__(self) -> bool:
        return bool(self.shared or self.bound)

    def __repr__(self) -> str:
        return f"CallfireSecrets(shared={len(self.shared)}, bound={len(self.bound)}, values=**********)"

    __str__ = __repr__

    def all(self) -> tuple[bytes, ...]:
        """Every distinct secret, each once: what a signature is checked against before parsing."""
        seen: dict[bytes, None] = dict.fromkeys(self.shared)
        for secrets in self.bound.values():
            seen.update(dict.fromkeys(secrets))
        return tuple(seen)

    def allowed_for(self, webhook_id: int | None) -> tuple[bytes, ...]:
        """The secrets that may sign a callback from CallFire webhook ``webhook_id``."""
        if webhook_id is not None and webhook_id in self.bound:
            return self.bound[webhook_id]
        return self.shared


def basic_pair(authorization: str | None) -> tuple[bytes, bytes] | None:
    """The user and password an ``Authorization: Basic ...`` header holds, if it holds a pair."""
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(token.strip(), validate=True)
    except ValueError:
        return None
    user, sep, password = decoded.partition(b":")
    return (user, password) if sep else None


@dataclass(frozen=True, repr=False)
class ApiCredentials:
    """``RELAY_API_CREDENTIALS``: ``user:password`` pairs for HTTP Basic on the Webhooks API."""

    pairs: tuple[tuple[bytes, bytes], ...] = ()

    @classmethod
    def parse(cls, text: str) -> ApiCredentials:
        pairs = []
        for item in _items(text, "credential"):
            user, sep, password = item.partition(":")
            if not sep or not user or not password:
                raise ValueError("each credential must be written user:password")
            pairs.append((user.encode(), password.encode()))
        return cls(tuple(pairs))

    def __bool__(self) -> bool:
        return bool(self.pairs)

    def __repr__(self) -> str:
        return f"ApiCredentials(count={len(self.pairs)}, values=**********)"

    __str__ = __repr__

    def check_header(self, authorization: str | None) -> bool:
        """True when an ``Authorization: Basic ...`` header names a configured pair.

        Every pair is compared, in constant time, whatever matched first.
        """
        given = basic_pair(authorization)
        if given is None or not self.pairs:
            return False
        user, password = given
        ok = False
        for want_user, want_password in self.pairs:
            user_ok = hmac.compare_digest(user, want_user)
            password_ok = hmac.compare_digest(password, want_password)
            ok |= user_ok & password_ok
        return ok


@dataclass(frozen=True, repr=False)
class SecretKeys:
    """``RELAY_SECRET_KEYS``: Fernet keys that seal webhook secrets at rest. The first seals; every
    key opens (``relay.webhooks.sealing``). A malformed key is named by its position, never shown."""

    keys: tuple[SecretStr, ...] = ()

    @classmethod
    def parse(cls, text: str) -> SecretKeys:
        items = _items(text, "key")
        for position, item in enumerate(items, 1):
            if not _is_fernet_key(item):
                raise ValueError(
                    f"key {position} of {len(items)} is not a Fernet key (32 bytes in url-safe "
                    "base64, 44 characters; `relay secrets new-key` makes one)"
                )
        return cls(tuple(SecretStr(item) for item in items))

    def __bool__(self) -> bool:
        return bool(self.keys)

    def __repr__(self) -> str:
        return f"SecretKeys(count={len(self.keys)}, values=**********)"

    __str__ = __repr__

    @functools.cached_property
    def first(self) -> Fernet:
        """The key that seals. Raises IndexError without keys."""
        return Fernet(self.keys[0].get_secret_value())

    @functools.cached_property
    def fernet(self) -> MultiFernet | None:
        """The keys as one MultiFernet (None without keys): what seals and opens."""
        if not self.keys:
            return None
        return MultiFernet([Fernet(key.get_secret_value()) for key in self.keys])


def _is_fernet_key(text: str) -> bool:
    try:
        Fernet(text)
    except ValueError:  # binascii.Error is one; its message never holds the key, nor does ours
        return False
    return True


def _items(text: str, what: str) -> list[str]:
    """A comma-separated list, each item stripped; blank text is none. An empty item (``","``,
    ``"a,,b"``, ``"a,"``) is an error: a value lost in editing, not "no value"."""
    if not text.strip():
        return []
    items = [item.strip() for item in text.split(",")]
    for position, item in enumerate(items, 1):
        if not item:
            raise ValueError(
                f"{what} {position} of {len(items)} is empty: write the {what}s separated by commas, "
                f"with none empty (unset the setting for no {what}s)"
            )
    return items
