"""What every state-changing POST of the console must carry: a token bound to the operator's own
credentials, and the marks of a same-origin request. Pure: time is passed in.

- **Token.** ``<issued>.<hmac>``: HMAC-SHA256, keyed with the password of the HTTP Basic pair the
  page was served to, of the user name and the issue time. Nothing is stored, every replica
  checks it alike, and a page from another site cannot read it. It lasts ``TOKEN_LIFETIME``.
- **Same origin.** The browser's ``Sec-Fetch-Site`` must say ``same-origin`` when sent, and the
  ``Origin`` (or, without one, the ``Referer``) must name this host. A request with none of the
  three is refused: every browser that runs the console sends at least ``Origin`` on a POST.
  Only the host and port are compared, so a TLS-terminating proxy in front changes nothing.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from urllib.parse import urlsplit

TOKEN_LIFETIME = 12 * 3600
"""Seconds a token stays valid: a console tab left open over a working day keeps working."""


def _mac(pair: tuple[bytes, bytes], issued: int) -> str:
    user, password = pair
    message = b"relay-console-csrf\x00" + user + b"\x00" + str(issued).encode()
    return hmac.new(password, message, hashlib.sha256).hexdigest()


def make_token(pair: tuple[bytes, bytes], now: int) -> str:
    """A token for the operator signed in with ``pair``, issued at ``now`` (unix seconds)."""
    return f"{now}.{_mac(pair, now)}"


def token_valid(token: str | None, pair: tuple[bytes, bytes] | None, now: int) -> bool:
    """True when ``token`` was made for ``pair`` no longer than ``TOKEN_LIFETIME`` ago."""
    if not token or pair is None:
        return False
    issued_text, dot, mac = token.partition(".")
    if not dot or not issued_text.isdigit() or len(issued_text) > 12:
        return False
    issued = int(issued_text)
    if not now - TOKEN_LIFETIME <= issued <= now + 60:
        return False
    return hmac.compare_digest(mac, _mac(pair, issued))


def _netloc(url: str) -> str | None:
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    return parts.netloc.lower()


def same_origin(headers: Mapping[str, str], host: str | None) -> str | None:
    """None when the request comes from a page of ``host`` itself; else why it is refused."""
    if not host:
        return "the request names no Host"
    site = headers.get("Sec-Fetch-Site")
    if site is not None and site != "same-origin":
        return f"Sec-Fetch-Site is {site}"
    origin = headers.get("Origin")
    referer = headers.get("Referer")
    if origin is not None:
        source, what = origin, "Origin"
    elif referer is not None:
        source, what = referer, "Referer"
    else:
        return "neither Origin nor Referer is sent"
    if _netloc(source) != host.lower():
        return f"{what} is another site"
    return None
