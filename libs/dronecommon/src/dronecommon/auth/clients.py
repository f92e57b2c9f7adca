"""Keyless clients for Azure Service Bus, Azure Managed Redis, Cosmos DB (MongoDB) and Key Vault.

Every builder reads its settings and picks one of two modes: keyless with a Microsoft Entra token
from the process credential (:func:`~dronecommon.auth.credentials.create_credential`) in Azure, or
the plain local form (a connection string, a URL) on a laptop, in CI and in docker-compose. No
builder does network I/O; connections open on first use.

- **Service Bus**: ``ServiceBusClient(fully_qualified_namespace, credential)`` when
  ``queue.servicebus_namespace`` is set (``name`` is completed to ``name.servicebus.windows.net``),
  ``from_connection_string`` for the emulator. Setting both is refused as ambiguous.
- **Redis**: with ``redis.use_entra_id`` the password is an Entra token for
  ``https://redis.azure.com/.default`` and the username the identity's object id (``redis.username``
  or the token's ``oid`` claim). :class:`EntraIdCredentialProvider` is a redis-py
  *streaming* credential provider: besides answering each new connection's ``AUTH``, it refreshes
  the token before expiry in the background and hands it to redis-py, which re-``AUTH``\\s the
  pooled connections, so long-lived connections are not dropped when the first token expires. A
  bearer token is never sent in clear text: Entra mode requires ``rediss://`` except to a loopback
  host (tests).
- **MongoDB**: with ``mongo.use_oidc``, MONGODB-OIDC with an ``OIDC_CALLBACK`` that asks the
  workload identity (sync credential; PyMongo runs the callback in a worker thread) for a token for
  ``mongo.oidc_resource``. PyMongo's built-in ``ENVIRONMENT=azure`` provider is available with
  ``imds=True`` but is not the default: it asks the instance metadata endpoint, which in AKS answers
  with the *node's* identity rather than the pod's workload identity.
- **Key Vault**: ``SecretClient(vault_url, credential)``.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import ipaddress
import logging
import os
import time
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

import jwt
from azure.core.credentials_async import AsyncTokenCredential
from azure.keyvault.secrets.aio import SecretClient
from azure.servicebus.aio import ServiceBusClient
from pymongo import AsyncMongoClient
from pymongo.auth_oidc import OIDCCallback, OIDCCallbackContext, OIDCCallbackResult
from redis.asyncio import ConnectionPool, Redis
from redis.auth.token import SimpleToken
from redis.credentials import StreamingCredentialProvider

from dronecommon.auth.credentials import (
    CLIENT_ID,
    AsyncTokenSource,
    BearerTokenProvider,
    CredentialConfigurationError,
    SyncTokenSource,
    create_sync_credential,
)
from dronecommon.settings import MongoSettings, QueueSettings, RedisSettings

logger = logging.getLogger(__name__)

REDIS_SCOPE = "https://redis.azure.com/.default"
SERVICEBUS_DOMAIN = "servicebus.windows.net"


# --- Service Bus -------------------------------------------------------------------------------


def servicebus_fqdn(namespace: str) -> str:
    """``drones`` -> ``drones.servicebus.windows.net``; a full host name (or URL) is kept."""
    host = urlsplit(namespace).hostname if "://" in namespace else namespace
    host = (host or namespace).strip().rstrip("/")
    return host if "." in host else f"{host}.{SERVICEBUS_DOMAIN}"


def create_servicebus_client(
    settings: QueueSettings, credential: AsyncTokenCredential | None = None, **kwargs: Any
) -> ServiceBusClient:
    """An async Service Bus client: keyless for a namespace, connection string for the emulator."""
    namespace = settings.servicebus_namespace
    connection_string = settings.servicebus_connection_string
    if namespace and connection_string is not None:
        raise CredentialConfigurationError(
            "queue.servicebus_namespace and queue.servicebus_connection_string are both set: "
            "keep the namespace (keyless, Azure) or the connection string (emulator), not both"
        )
    if namespace:
        if credential is None:
            raise CredentialConfigurationError(
                "queue.servicebus_namespace needs a credential (create_credential())"
            )
        return ServiceBusClient(servicebus_fqdn(namespace), credential, **kwargs)
    if connection_string is not None:
        return ServiceBusClient.from_connection_string(
            connection_string.get_secret_value(), **kwargs
        )
    raise CredentialConfigurationError(
        "the servicebus transport needs queue.servicebus_namespace (Azure) "
        "or queue.servicebus_connection_string (emulator)"
    )


# --- Redis -------------------------------------------------------------------------------------


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


def _is_loopback(host: str | None) -> bool:
    if host in (None, "", "localhost"):
        return True
    try:
        return ipaddress.ip_address(str(host)).is_loopback
    except ValueError:
        return False


def create_redis_client(
    settings: RedisSettings,
    credential: AsyncTokenSource | None = None,
    *,
    url: str | None = None,
    **kwargs: Any,
) -> Redis:
    """An async Redis client for ``url`` (default ``settings.url``), with Entra ID when configured.

    ``kwargs`` go to the connection pool (``decode_responses=True`` and the like); the socket
    timeout and pool size come from the settings.
    """
    target = url or settings.url
    options: dict[str, Any] = {
        "socket_timeout": settings.socket_timeout,
        "socket_connect_timeout": settings.socket_timeout,
        "max_connections": settings.max_connections,
        **kwargs,
    }
    if not settings.use_entra_id:
        return Redis.from_url(target, **options)
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
    provider = EntraIdCredentialProvider(
        BearerTokenProvider(credential, REDIS_SCOPE), username=settings.username
    )
    pool = ConnectionPool.from_url(target, credential_provider=provider, **options)
    # The provider goes to the client too: that is how redis-py wires re-authentication.
    client = KeylessRedis(connection_pool=pool, credential_provider=provider)
    client.auto_close_connection_pool = True  # the client owns the pool, as with from_url
    return client


# --- MongoDB -----------------------------------------------------------------------------------


class AzureIdentityOIDCCallback(OIDCCallback):
    """MONGODB-OIDC machine callback: an Entra token for ``resource`` from an Azure credential."""

    def __init__(self, credential: SyncTokenSource, resource: str) -> None:
        self.credential = credential
        self.resource = resource
        self.scope = resource.rstrip("/") + "/.default"

    def fetch(self, context: OIDCCallbackContext) -> OIDCCallbackResult:
        token = self.credential.get_token(self.scope)
        return OIDCCallbackResult(
            access_token=token.token,
            expires_in_seconds=max(token.expires_on - time.time(), 0.0),
        )


def mongo_client_kwargs(
    settings: MongoSettings,
    credential: SyncTokenSource | None = None,
    *,
    imds: bool = False,
    environ: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Keyword arguments for ``AsyncMongoClient(settings.url, **kwargs)``.

    Always the pool size and server selection timeout; with ``use_oidc`` also MONGODB-OIDC with
    an :class:`AzureIdentityOIDCCallback` (``credential``, default
    :func:`~dronecommon.auth.credentials.create_sync_credential`), or PyMongo's own Azure (IMDS)
    provider when ``imds`` is true.
    """
    kwargs: dict[str, Any] = {
        "serverSelectionTimeoutMS": int(settings.server_selection_timeout * 1000),
        "maxPoolSize": settings.max_pool_size,
    }
    if not settings.use_oidc:
        return kwargs
    resource = settings.oidc_resource
    if not resource:
        raise CredentialConfigurationError("mongo.use_oidc needs mongo.oidc_resource")
    kwargs["authMechanism"] = "MONGODB-OIDC"
    if imds:
        kwargs["authMechanismProperties"] = {"ENVIRONMENT": "azure", "TOKEN_RESOURCE": resource}
        client_id = (os.environ if environ is None else environ).get(CLIENT_ID)
        if client_id:
            kwargs["username"] = client_id  # a user-assigned identity is chosen by client id
        return kwargs
    source = credential if credential is not None else create_sync_credential(environ=environ)
    kwargs["authMechanismProperties"] = {
        "OIDC_CALLBACK": AzureIdentityOIDCCallback(source, resource)
    }
    return kwargs


def create_mongo_client(
    settings: MongoSettings, credential: SyncTokenSource | None = None, **overrides: Any
) -> AsyncMongoClient[dict[str, Any]]:
    """An ``AsyncMongoClient`` for ``settings.url``, keyless with ``use_oidc``; no I/O yet."""
    kwargs = {**mongo_client_kwargs(settings, credential), **overrides}
    return AsyncMongoClient(settings.url, **kwargs)


# --- Key Vault ---------------------------------------------------------------------------------


def create_secret_client(vault_url: str, credential: AsyncTokenCredential) -> SecretClient:
    """An async Key Vault secret client (always keyless)."""
    if urlsplit(vault_url).scheme != "https":
        raise CredentialConfigurationError(f"key vault url must be https:// (got {vault_url!r})")
    return SecretClient(vault_url, credential)
