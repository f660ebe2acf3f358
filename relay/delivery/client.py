"""Outbound HTTP: one ClientSession per process, the egress policy on every connection.

The policy (``relay.egress.refusal``) is checked on the address actually connected to: names go
through ``EgressResolver``, which drops every refused address a DNS answer holds (so a name that
resolves to a metadata address is refused however it is spelled); IP-literal hosts, which aiohttp
connects to without resolving, are checked before the request. Redirects are not followed.
"""

from __future__ import annotations

import ipaddress
import socket
import time

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.helpers import is_ip_address
from aiohttp.resolver import DefaultResolver
from yarl import URL

from relay.delivery.message import OutboundRequest
from relay.delivery.policy import AttemptResult
from relay.egress import EgressAllow, refusal

MAX_RESPONSE_BYTES = 64 * 1024
"""A response body past this is not read to its end (the connection is then not reused)."""


class EgressRefused(OSError):
    """Every address of a callback's host is refused by the egress policy."""


class EgressResolver(AbstractResolver):
    """Resolves with ``inner`` and keeps only the addresses the egress policy allows."""

    def __init__(self, allow: EgressAllow, inner: AbstractResolver | None = None) -> None:
        self.allow = allow
        self.inner = inner if inner is not None else DefaultResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = await self.inner.resolve(host, port, family)
        allowed = [r for r in results if refusal(r["host"], self.allow) is None]
        if not allowed:
            reasons = {refusal(r["host"], self.allow) for r in results}
            raise EgressRefused(f"{host}: " + "; ".join(sorted(r for r in reasons if r)))
        return allowed

    async def close(self) -> None:
        await self.inner.close()


def literal_refusal(host: str | None, allow: EgressAllow) -> str | None:
    """Why an IP-literal host is refused (None: allowed, or a name for the resolver to check).

    Whatever aiohttp would take for an address without resolving it must parse as a canonical
    address here, or it is refused: decimal (``2130706433``) and short (``127.1``) forms included.
    """
    if not host:
        return "the callback URL has no host"
    bare = host.strip("[]")
    if not is_ip_address(bare):
        return None
    try:
        address = ipaddress.ip_address(bare)
    except ValueError:
        return f"{host} is not a canonical IP address"
    return refusal(address, allow)


class Sender:
    """POSTs deliveries. ``start`` opens the session, ``close`` closes it."""

    def __init__(
        self,
        allow: EgressAllow,
        timeout: float,
        max_connections: int,
        resolver: AbstractResolver | None = None,
    ) -> None:
        self.allow = allow
        self.timeout = timeout
        self.max_connections = max_connections
        self._resolver = resolver
        self._session: aiohttp.ClientSession | None = None
        self._literal: dict[str, str | None] = {}
        """URL -> ``literal_refusal`` of its host (the same few callbacks come again and again)."""

    async def start(self) -> None:
        connector = aiohttp.TCPConnector(
            limit=self.max_connections,
            limit_per_host=0,  # the worker bounds each host itself, without blocking others
            resolver=EgressResolver(self.allow, self._resolver),
            ttl_dns_cache=10,
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            timeout=aiohttp.ClientTimeout(total=self.timeout),
            auto_decompress=False,
            cookie_jar=aiohttp.DummyCookieJar(),
        )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def send(self, request: OutboundRequest) -> AttemptResult:
        """One attempt; never raises for anything the network or the receiver does."""
        assert self._session is not None, "Sender.start() first"
        started = time.perf_counter()
        refused = self._refusal(request.url)
        if refused is not None:
            return AttemptResult(None, 0.0, error=f"egress refused: {refused}", refused=True)
        try:
            async with self._session.post(
                request.url,
                data=request.body,
                headers=request.headers,
                allow_redirects=False,
                ssl=request.verify_ssl,
            ) as response:
                await _drain(response)
                return AttemptResult(
                    response.status,
                    time.perf_counter() - started,
                    retry_after=response.headers.get("Retry-After"),
                )
        except aiohttp.ClientConnectorError as exc:
            if isinstance(exc.os_error, EgressRefused):
                error = f"egress refused: {exc.os_error}"
                return AttemptResult(None, time.perf_counter() - started, error=error, refused=True)
            return _failed(started, f"cannot connect: {exc.os_error.strerror or type(exc).__name__}")
        except TimeoutError:
            return _failed(started, f"timed out after {self.timeout:g}s")
        except aiohttp.InvalidURL as exc:
            error = f"egress refused: invalid URL ({exc})"
            return AttemptResult(None, time.perf_counter() - started, error=error, refused=True)
        except (aiohttp.ClientError, OSError) as exc:
            return _failed(started, f"{type(exc).__name__}: {exc}"[:200])

    def _refusal(self, url: str) -> str | None:
        if url not in self._literal:
            if len(self._literal) >= 10_000:
                self._literal.clear()
            self._literal[url] = literal_refusal(URL(url).host, self.allow)
        return self._literal[url]


def _failed(started: float, error: str) -> AttemptResult:
    return AttemptResult(None, time.perf_counter() - started, error=error)


async def _drain(response: aiohttp.ClientResponse) -> None:
    """Read the body so the connection can be reused, but no more than is sensible."""
    length = response.content_length
    if length is not None and length <= MAX_RESPONSE_BYTES:
        await response.read()
        return
    read = 0
    async for chunk in response.content.iter_chunked(16384):
        read += len(chunk)
        if read > MAX_RESPONSE_BYTES:
            return
