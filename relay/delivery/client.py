"""Outbound HTTP: one connection pool per process, the egress policy on every connection.

The policy (``relay.egress.refusal``) is checked on the address actually connected to: names go
through ``EgressResolver``, which drops every refused address a DNS answer holds (so a name that
resolves to a metadata address is refused however it is spelled); IP-literal hosts, connected to
without resolving, are checked before the request. Redirects are not followed. Requests go out
through ``relay.delivery.http1`` (a lean keep-alive HTTP/1.1 client), not an aiohttp session:
at the volumes a worker moves, the HTTP client is most of its CPU.
"""

from __future__ import annotations

import asyncio
import base64
import ipaddress
import socket
import time
from typing import NamedTuple

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.helpers import is_ip_address
from aiohttp.resolver import DefaultResolver
from yarl import URL

from relay.delivery.http1 import Answer, Connection, Origin, Pool, ResponseError
from relay.delivery.message import OutboundRequest
from relay.delivery.policy import AttemptResult
from relay.egress import EgressAllow, refusal


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


class _Target(NamedTuple):
    """What a callback URL comes to: where to connect, and the request's first lines."""

    origin: Origin
    literal: bool
    head: bytes
    """``POST <path> HTTP/1.1`` and the Host (and, from the URL, Authorization) headers."""


def target_of(url: str, verify: bool) -> _Target:
    """Raises ValueError for a URL that cannot be requested."""
    parsed = URL(url)
    if parsed.scheme not in ("http", "https") or not parsed.raw_host or parsed.port is None:
        raise ValueError(f"not an absolute http(s) URL: {url!r}")
    host = parsed.raw_host
    lines = [f"POST {parsed.raw_path_qs or '/'} HTTP/1.1", f"Host: {parsed.host_port_subcomponent}"]
    if parsed.user is not None:
        basic = f"{parsed.user}:{parsed.password or ''}".encode()
        lines.append(f"Authorization: Basic {base64.b64encode(basic).decode()}")
    if any(ch in line for line in lines for ch in "\r\n\0"):
        raise ValueError(f"a line break in URL {url!r}")
    head = "\r\n".join(lines) + "\r\n"
    origin = Origin(parsed.scheme, host, parsed.port, verify and parsed.scheme == "https")
    return _Target(origin, is_ip_address(host), head.encode("latin-1"))


def encode(head: bytes, request: OutboundRequest) -> bytes:
    """The whole request. Raises ValueError on a header that would break its line."""
    headers = request.headers
    values = "".join(headers.values())
    if "\r" in values or "\n" in values:
        raise ValueError("a line break in a header")
    fields = "".join([f"{name}: {value}\r\n" for name, value in headers.items()])
    body = request.body
    return b"%s%sContent-Length: %d\r\n\r\n%s" % (head, fields.encode("latin-1"), len(body), body)


class Sender:
    """POSTs deliveries. ``start`` opens the pool, ``close`` closes it."""

    def __init__(
        self,
        *,
        allow: EgressAllow,
        timeout: float,
        max_connections: int,
        resolver: AbstractResolver | None = None,
    ) -> None:
        self.allow = allow
        self.timeout = timeout
        self.max_connections = max_connections
        self._resolver = resolver
        self._pool: Pool | None = None
        self._targets: dict[tuple[str, bool], _Target | str] = {}
        """(URL, verify) -> its target, or why it is refused (the same few callbacks come again
        and again)."""
        self._pruned = 0.0

    async def start(self) -> None:
        self._pool = Pool(EgressResolver(self.allow, self._resolver), max_idle=self.max_connections)

    async def close(self) -> None:
        if self._pool is not None:
            self._pool.close()
            await self._pool.resolver.close()
            self._pool = None

    async def send(self, request: OutboundRequest) -> AttemptResult:
        """One attempt; never raises for anything the network or the receiver does."""
        assert self._pool is not None, "Sender.start() first"
        started = time.perf_counter()
        target = self._target(request.url, request.verify_ssl)
        if isinstance(target, str):
            return AttemptResult(status=None, seconds=0.0, error=f"egress refused: {target}", refused=True)
        data = encode(target.head, request)
        loop = asyncio.get_running_loop()
        now = loop.time()
        if now - self._pruned > 1.0:
            self._pool.prune(now)
            self._pruned = now
        conn = self._pool.idle(target.origin, now)
        try:
            if conn is None:
                try:
                    async with asyncio.timeout(self.timeout):
                        conn = await self._pool.open(target.origin, target.literal)
                except EgressRefused as exc:
                    error = f"egress refused: {exc}"
                    return AttemptResult(
                        status=None, seconds=time.perf_counter() - started, error=error, refused=True
                    )
                except TimeoutError:
                    return _failed(started, f"timed out after {self.timeout:g}s")
                except OSError as exc:
                    return _failed(started, f"cannot connect: {exc.strerror or type(exc).__name__}")
            answer = await self._exchange(conn, data, started)
        except TimeoutError:
            return _failed(started, f"timed out after {self.timeout:g}s")
        except (ResponseError, OSError) as exc:
            return _failed(started, f"{type(exc).__name__}: {exc}"[:200])
        finally:
            if conn is not None:
                self._pool.release(target.origin, conn, loop.time())
        seconds = time.perf_counter() - started
        return AttemptResult(
            status=answer.status, seconds=seconds, retry_after=answer.retry_after, answer=answer.body
        )

    async def _exchange(self, conn: Connection, data: bytes, started: float) -> Answer:
        """Send on ``conn`` and wait for the answer, within what is left of the timeout."""
        left = self.timeout - (time.perf_counter() - started)
        deadline = asyncio.get_running_loop().call_later(max(0.0, left), conn.timed_out)
        try:
            return await conn.send(data)
        except asyncio.CancelledError:
            conn.close()
            raise
        finally:
            deadline.cancel()

    def _target(self, url: str, verify: bool) -> _Target | str:
        key = (url, verify)
        found = self._targets.get(key)
        if found is None:
            if len(self._targets) >= 10_000:
                self._targets.clear()
            found = self._targets[key] = _judge(url, verify, self.allow)
        return found


def _judge(url: str, verify: bool, allow: EgressAllow) -> _Target | str:
    """The URL's target, or why it is refused: not requestable, or an IP literal the policy refuses."""
    try:
        target = target_of(url, verify)
    except ValueError as exc:
        return f"invalid URL ({exc})"
    refused = literal_refusal(URL(url).host, allow)
    return refused if refused is not None else target


def _failed(started: float, error: str) -> AttemptResult:
    return AttemptResult(status=None, seconds=time.perf_counter() - started, error=error)
