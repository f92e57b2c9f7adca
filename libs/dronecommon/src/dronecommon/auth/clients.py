"""Keyless clients for Azure Service Bus, Azure Managed Redis, Cosmos DB (MongoDB) and Key Vault.

Every builder reads its settings and picks one of two modes: keyless with a Microsoft Entra token
from the process credential (:func:`~dronecommon.auth.credentials.create_credential`) in Azure, or
the plain local form (a connection string, a URL) on a laptop, in CI and in docker-compose. No
builder does network I/O; connections open on first use.

- **Service Bus**: ``ServiceBusClient(fully_qualified_namespace, credential)`` when
  ``queue.servicebus_namespace`` is set (``name`` is completed to ``name.servicebus.windows.net``),
  ``from_connection_string`` for the emulator. Setting both is refused as ambiguous.
- **Redis**: :func:`~dronecommon.redis.create_redis_client`, the one Redis client factory, with
  ``redis.use_entra_id`` (re-exported here).
- **MongoDB**: with ``mongo.use_oidc``, MONGODB-OIDC with an ``OIDC_CALLBACK`` that asks the
  workload identity (sync credential; PyMongo runs the callback in a worker thread) for a token for
  ``mongo.oidc_resource``. PyMongo's built-in ``ENVIRONMENT=azure`` provider is available with
  ``imds=True`` but is not the default: it asks the instance metadata endpoint, which in AKS answers
  with the *node's* identity rather than the pod's workload identity.
- **Key Vault**: ``SecretClient(vault_url, credential)``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from azure.core.credentials_async import AsyncTokenCredential
from azure.keyvault.secrets.aio import SecretClient
from azure.servicebus.aio import ServiceBusClient
from pymongo import AsyncMongoClient
from pymongo.auth_oidc import OIDCCallback, OIDCCallbackContext, OIDCCallbackResult

from dronecommon.auth.credentials import (
    CLIENT_ID,
    CredentialConfigurationError,
    SyncTokenSource,
    create_sync_credential,
)
from dronecommon.redis import (
    REDIS_SCOPE,
    EntraIdCredentialProvider,
    KeylessRedis,
    create_redis_client,
)
from dronecommon.settings import MongoSettings, QueueSettings

__all__ = [
    "REDIS_SCOPE",
    "SERVICEBUS_DOMAIN",
    "AzureIdentityOIDCCallback",
    "EntraIdCredentialProvider",
    "KeylessRedis",
    "create_mongo_client",
    "create_redis_client",
    "create_secret_client",
    "create_servicebus_client",
    "mongo_client_kwargs",
    "servicebus_fqdn",
]

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
