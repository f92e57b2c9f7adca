"""Every Redis client of the services comes from :func:`create_redis_client`.

It owns what a client is made of, so that no caller builds a pool by hand:

- **URL**: ``settings.url``, or ``url=`` for a second Redis (the queue's own, say).
- **Identity**: the plain URL locally; with ``settings.use_entra_id`` (Azure Managed Redis with
  access keys disabled) the password is a Microsoft Entra token for
  ``https://redis.azure.com/.default`` and the username the identity's object id
  (``settings.username`` or the token's ``oid`` claim). :class:`EntraIdCredentialProvider` is a
  redis-py *streaming* credential provider: besides answering each new connection's ``AUTH``, it
  refreshes the token before expiry in the background and hands it to redis-py, which
  re-``AUTH``\\s the pooled connections, so long-lived connections are not dropped when the first
  token expires. A bearer token is never sent in clear text: Entra mode requires ``rediss://``
  except to a loopback host (tests).
- **Pool kind**: a plain pool fails a command at once with "Too many connections" when all
  ``max_connections`` are busy; with ``blocking_pool=True`` the caller waits up to
  ``socket_timeout`` for a free connection instead (a burst of queue sends and settlements waits
  its turn).
- **Timeouts and size**: ``socket_timeout``, ``socket_connect_timeout`` (default: the socket
  timeout) and ``max_connections`` come from the settings unless the caller passes its own.
- **Reconnects**: ``reconnect_retries`` quick retries (exponential backoff with jitter, 50 ms to
  0.5 s) of a command whose connection dropped or timed out; none by default.
- **Replies**: raw bytes unless ``decode_responses=True``.
- **Command packing**: in C, by hiredis (``hiredis.pack_command``), as redis-py's synchronous
  connections pack by default; its asyncio connections pack every argument in Python
  (redis/redis-py#4176), which was the largest single cost of the delivery service's telemetry
  consumer, whose one script call a batch carries some twenty arguments a fix. The bytes are the
  same for every argument redis-py accepts, and an argument it refuses (``None``, a ``bool``)
  still raises ``DataError`` (:class:`_PackedInC`; without hiredis, redis-py's own packer).

No I/O happens here: connections open on first use. The client owns its pool (``aclose()``
closes both) and, in Entra mode, stops its token refresh when closed (:class:`KeylessRedis`).

The Entra pieces of :mod:`dronecommon.auth.credentials` are imported where they are used:
:mod:`dronecommon.auth` re-exports this module's names, so a module-level import would make the
two packages import each other.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import ipaddress
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import jwt
from redis.asyncio import BlockingConnectionPool, ConnectionPool, Redis
from redis.asyncio.connection import AbstractConnection
from redis.asyncio.retry import Retry
from redis.auth.token import SimpleToken
from redis.backoff import ExponentialWithJitterBackoff
from redis.connection import HiredisRespSerializer
from redis.credentials import StreamingCredentialProvider
from redis.utils import HIREDIS_AVAILABLE

from dronecommon.settings import RedisSettings

if TYPE_CHECKING:
    from dronecommon.auth.credentials import AsyncTokenSource, BearerTokenProvider

logger = logging.getLogger(__name__)

REDIS_SCOPE = "https://redis.azure.com/.default"


def create_redis_client(
    settings: RedisSettings,
    credential: AsyncTokenSource | None = None,
    *,
    url: str | None = None,
    blocking_pool: bool = False,
    socket_timeout: float | None = None,
    socket_connect_timeout: float | None = None,
    max_connections: int | None = None,
    reconnect_retries: int = 0,
    decode_responses: bool = False,
    **options: Any,
) -> Redis:
    """An async Redis client for ``url`` (default ``settings.url``), keyless when configured.

    ``options`` go to the connection pool unchanged (``health_check_interval`` and the like).
    Raises :class:`~dronecommon.auth.credentials.CredentialConfigurationError` when Entra mode
    lacks a credential or would send its token in clear text.
    """
    target = url or settings.url
    timeout = settings.socket_timeout if socket_timeout is None else socket_timeout
    pool_options: dict[str, Any] = {
        "socket_timeout": timeout,
        "socket_connect_timeout": timeout
        if socket_connect_timeout is None
        else socket_connect_timeout,
        "max_connections": settings.max_connections if max_connections is None else max_connections,
        "decode_responses": decode_responses,
        "retry": Retry(ExponentialWithJitterBackoff(base=0.05, cap=0.5), reconnect_retries),
        **options,
    }
    pool_class: type[ConnectionPool] = ConnectionPool
    if blocking_pool:
        pool_class = BlockingConnectionPool
        pool_options.setdefault("timeout", timeout)  # how long to wait for a free connection
    if not settings.use_entra_id:
        return _owning(Redis, pool_class.from_url(target, **pool_options))
    provider = _entra_provider(settings, credential, target)
    pool = pool_class.from_url(target, credential_provider=provider, **pool_options)
    # The provider goes to the client too: that is how redis-py wires re-authentication.
    return _owning(KeylessRedis, pool, credential_provider=provider)


def _owning(client_class: type[Redis], pool: ConnectionPool, **kwargs: Any) -> Redis:
    if HIREDIS_AVAILABLE:
        pool.connection_class = _packing_in_c(pool.connection_class)
    client = client_class(connection_pool=pool, **kwargs)
    client.auto_close_connection_pool = True  # the client owns its pool, as with from_url
    return client


class _PackedInC:
    """Mixed in ahead of a redis-py asyncio connection class: ``pack_command`` by hiredis
    (see the module docstring); pipelines pack through it too (``pack_commands``)."""

    _serializer = HiredisRespSerializer()

    def pack_command(self, *args: Any) -> list[bytes]:
        packed: list[bytes] = self._serializer.pack(*args)
        return packed


_PACKED: dict[type[AbstractConnection], type[AbstractConnection]] = {}


def _packing_in_c(base: type[AbstractConnection]) -> type[AbstractConnection]:
    """``base`` (plain, TLS or Unix socket, as the URL chose) packing its commands in C."""
    packed = _PACKED.get(base)
    if packed is None:
        packed = _PACKED[base] = type(base.__name__, (_PackedInC, base), {})
    return packed


def _entra_provider(
    settings: RedisSettings, credential: AsyncTokenSource | None, target: str
) -> EntraIdCredentialProvider:
    from dronecommon.auth.credentials import (  # see the module docstring
        BearerTokenProvider,
        CredentialConfigurationError,
    )

    if credential is None:
        raise CredentialConfigurationError("redis.use_entra_id needs a credential")
    parts = urlsplit(target)
    if parts.scheme != "rediss" and not _is_loopback(parts.hostname):
        raise CredentialConfigurationError(
            f"redis.use_entra_id sends bearer tokens: redis.url must use rediss:// (got {target!r})"
        )
    if parts.password:
        raise CredentialConfigurationError(
            "redis.use_entra_id: redis.url must not carry a password (the token is the password)"
        )
    return EntraIdCredentialProvider(
        BearerTokenProvider(credential, REDIS_SCOPE), username=settings.username
    )


def _is_loopback(host: str | None) -> bool:
    if host in (None, "", "localhost"):
        return True
    try:
        return ipaddress.ip_address(str(host)).is_loopback
    except ValueError:
        return False


# --- Microsoft Entra ID ------------------------------------------------------------------------


def _token_claim(token: str, name: str) -> str | None:
    """A claim read from a token this process was just given by Entra (not a trust decision)."""
    try:
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        return None
    value = claims.get(name)
    return value if isinstance(value, str) else None


class EntraIdCredentialProvider(StreamingCredentialProvider):
    """redis-py credentials ``(object id, Entra token)``, re-sent to open connections on refresh.

    ``get_credentials_async`` answers each new connection. Once redis-py has registered its
    re-authentication callback (``on_next``), the first call also starts a background task that
    sleeps until the token is due for refresh, refreshes it and passes it to the callback. Failed
    refreshes are retried every ``retry_delay`` seconds while the old token lasts. :meth:`aclose`
    stops the task (``KeylessRedis.aclose`` calls it).
    """

    def __init__(
        self,
        tokens: BearerTokenProvider,
        *,
        username: str | None = None,
        retry_delay: float = 5.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.tokens = tokens
        self._username = username
        self._retry_delay = retry_delay
        self._clock = clock
        self._on_next: Callable[[Any], Any] | None = None
        self._on_error: Callable[[Exception], Any] | None = None
        self._refresher: asyncio.Task[None] | None = None
        self._closed = False

    def _username_for(self, token: str) -> str:
        username = self._username or _token_claim(token, "oid")
        if not username:
            from dronecommon.auth.credentials import (  # see the module docstring
                CredentialConfigurationError,
            )

            raise CredentialConfigurationError(
                "redis.username is not set and the Entra token carries no oid claim"
            )
        return username

    async def get_credentials_async(self) -> tuple[str, str]:
        token = (await self.tokens.access_token()).token
        self._start_refresher()
        return self._username_for(token), token

    def get_credentials(self) -> tuple[str, str]:
        """The current credentials (sync clients are not supported: tokens are fetched async)."""
        cached = self.tokens.cached
        if cached is None or self._clock() >= cached.expires_on:
            raise RuntimeError("EntraIdCredentialProvider serves redis.asyncio clients only")
        return self._username_for(cached.token), cached.token

    def on_next(self, callback: Callable[[Any], Any]) -> None:
        self._on_next = callback

    def on_error(self, callback: Callable[[Exception], Any]) -> None:
        self._on_error = callback

    def is_streaming(self) -> bool:
        return True

    def _start_refresher(self) -> None:
        if self._closed or self._on_next is None:
            return
        if self._refresher is None or self._refresher.done():
            self._refresher = asyncio.get_running_loop().create_task(
                self._refresh_forever(), name="redis-entra-token-refresh"
            )

    async def _refresh_forever(self) -> None:
        announced = self.tokens.cached.token if self.tokens.cached else None
        while True:
            cached = self.tokens.cached
            due = cached.expires_on - self.tokens.refresh_margin if cached else self._clock()
            await asyncio.sleep(max(due - self._clock() + 0.05, 0.05))
            try:
                access = await self.tokens.access_token()
                if access.token == announced:
                    await asyncio.sleep(self._retry_delay)  # not refreshed: try again shortly
                    continue
                now_ms = self._clock() * 1000
                token = SimpleToken(
                    access.token,
                    access.expires_on * 1000,
                    now_ms,
                    {"oid": self._username_for(access.token)},
                )
                if self._on_next is not None:
                    result = self._on_next(token)
                    if inspect.isawaitable(result):
                        await result
                announced = access.token
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.warning("Redis Entra token refresh failed; retrying", exc_info=True)
                await asyncio.sleep(self._retry_delay)

    async def aclose(self) -> None:
        """Stop the background refresh."""
        self._closed = True
        task, self._refresher = self._refresher, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


class KeylessRedis(Redis):
    """A redis.asyncio client that also stops its Entra token refresh when closed."""

    async def aclose(self, close_connection_pool: bool | None = None) -> None:
        await super().aclose(close_connection_pool)
        provider = self.connection_pool.connection_kwargs.get("credential_provider")
        if isinstance(provider, EntraIdCredentialProvider):
            await provider.aclose()
