"""Where a webhook may be sent: the URL policy and the address check, pinned to the connection.

Outside development a webhook goes only to ``https`` URLs whose host resolves to public addresses:
**every** address the name resolves to must be globally routable — none private (RFC 1918, ULA),
loopback, link-local, multicast, reserved, unspecified, shared (RFC 6598) or documentation, and
IPv4-mapped IPv6 addresses are judged as the IPv4 address they carry. In development plain
``http`` to a loopback host is allowed too, and no address is refused.

The check happens inside the HTTP client's connection step (:class:`CheckedResolver` is the
aiohttp connector's resolver): the addresses the client connects to are exactly the ones that were
checked, so a name that resolves to a public address for the check and to a private one a moment
later (DNS rebinding) cannot slip through. TLS still verifies the certificate against the host
name. IP literals never reach a resolver, so :func:`check_url` checks them itself.
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver

from dronecommon.notifyme import is_loopback_host


class TargetRefusedError(OSError):
    """A webhook target the rules forbid (never retried)."""


def refusal(address: str) -> str | None:
    """Why ``address`` may not be called outside development, or None when it may."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    for name in ("loopback", "link_local", "multicast", "unspecified", "reserved", "private"):
        if getattr(ip, f"is_{name}"):
            return f"{address} is a {name.replace('_', '-')} address"
    if not ip.is_global:
        return f"{address} is not a globally routable address"
    return None


def check_url(url: str, *, development: bool, private_allowed: bool) -> None:
    """Raise :class:`TargetRefusedError` when ``url`` may not be called (scheme, IP literal)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.scheme == "http":
        if not (development and is_loopback_host(host)):
            raise TargetRefusedError(
                f"{url}: plain http is allowed only to loopback in development"
            )
    elif parts.scheme != "https":
        raise TargetRefusedError(f"{url}: only https URLs are called")
    if private_allowed:
        return
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return  # a name: checked when it is resolved
    reason = refusal(host)
    if reason is not None:
        raise TargetRefusedError(f"{url}: {reason}")


class CheckedResolver(AbstractResolver):
    """aiohttp's resolver, refusing a name when any of its addresses is not public."""

    def __init__(self, *, private_allowed: bool) -> None:
        self.private_allowed = private_allowed
        self._resolver = DefaultResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = await self._resolver.resolve(host, port, family)
        if not self.private_allowed:
            for result in results:
                reason = refusal(result["host"])
                if reason is not None:
                    raise TargetRefusedError(f"{host} resolves to {reason}")
        return results

    async def close(self) -> None:
        await self._resolver.close()
