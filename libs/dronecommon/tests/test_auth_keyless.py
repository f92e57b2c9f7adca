"""Keyless clients: Service Bus, Redis (Entra ID, re-authenticated on refresh against a real
redis-server with an ACL user), MongoDB (OIDC) and Key Vault, each given a credential instead of
a secret.

Microsoft Entra cannot run here: the credentials are fakes at the SDK boundary (named as such).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import pytest
from azure.core.credentials import AccessToken
from pydantic import SecretStr
from redis.asyncio import Redis

from dronecommon.auth import (
    REDIS_SCOPE,
    AzureIdentityOIDCCallback,
    BearerTokenProvider,
    CredentialConfigurationError,
    EntraIdCredentialProvider,
    create_mongo_client,
    create_redis_client,
    create_secret_client,
    create_servicebus_client,
    mongo_client_kwargs,
)
from dronecommon.settings import MongoSettings, QueueSettings, RedisSettings
from dronetesting.servers import RedisServer

from .conftest import FakeAsyncCredential


class FakeSyncCredential:
    """Fake of a sync Azure credential (as PyMongo's OIDC callback uses)."""

    def __init__(self) -> None:
        self.scopes: list[tuple[str, ...]] = []

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        self.scopes.append(scopes)
        return AccessToken("mongo-token", int(time.time() + 1800))


async def test_servicebus_keyless_gets_the_namespace_and_credential() -> None:
    credential = FakeAsyncCredential()
    client = create_servicebus_client(
        QueueSettings(transport="servicebus", servicebus_namespace="drones"), credential
    )
    try:
        assert client.fully_qualified_namespace == "drones.servicebus.windows.net"
        assert client._credential is credential
    finally:
        await client.close()
    full = create_servicebus_client(
        QueueSettings(servicebus_namespace="sb://drones.servicebus.windows.net/"), credential
    )
    assert full.fully_qualified_namespace == "drones.servicebus.windows.net"
    await full.close()


async def test_servicebus_connection_string_for_the_emulator() -> None:
    connection_string = (
        "Endpoint=sb://localhost;SharedAccessKeyName=RootManageSharedAccessKey;"
        "SharedAccessKey=SAS_KEY_VALUE;UseDevelopmentEmulator=true;"
    )
    settings = QueueSettings(servicebus_connection_string=SecretStr(connection_string))
    client = create_servicebus_client(settings)
    assert client.fully_qualified_namespace == "localhost"
    await client.close()
    with pytest.raises(CredentialConfigurationError, match="both set"):
        create_servicebus_client(
            QueueSettings(
                servicebus_namespace="drones",
                servicebus_connection_string=SecretStr(connection_string),
            ),
            FakeAsyncCredential(),
        )
    with pytest.raises(CredentialConfigurationError, match="servicebus_namespace"):
        create_servicebus_client(QueueSettings())
    with pytest.raises(CredentialConfigurationError, match="credential"):
        create_servicebus_client(QueueSettings(servicebus_namespace="drones"))


async def test_redis_entra_provider_returns_object_id_and_token() -> None:
    credential = FakeAsyncCredential(oid="00000000-aaaa")
    provider = EntraIdCredentialProvider(BearerTokenProvider(credential, REDIS_SCOPE))
    username, token = await provider.get_credentials_async()
    assert username == "00000000-aaaa"
    assert token == provider.tokens.cached.token  # type: ignore[union-attr]
    assert credential.scopes == [(REDIS_SCOPE,)]
    assert provider.get_credentials() == (username, token)
    named = EntraIdCredentialProvider(BearerTokenProvider(credential, REDIS_SCOPE), username="me")
    assert (await named.get_credentials_async())[0] == "me"
    await provider.aclose()
    await named.aclose()


async def test_redis_entra_client_requires_tls_off_loopback() -> None:
    settings = RedisSettings(url="redis://cache.example.net:6380/0", use_entra_id=True)
    with pytest.raises(CredentialConfigurationError, match="rediss://"):
        create_redis_client(settings, FakeAsyncCredential())
    with pytest.raises(CredentialConfigurationError, match="credential"):
        create_redis_client(settings.model_copy(update={"url": "rediss://cache:10000"}))
    tls = create_redis_client(
        settings.model_copy(update={"url": "rediss://cache.example.net:10000/0"}),
        FakeAsyncCredential(),
    )
    try:
        kwargs = tls.connection_pool.connection_kwargs
        assert isinstance(kwargs["credential_provider"], EntraIdCredentialProvider)
        assert tls.connection_pool.connection_class.__name__ == "SSLConnection"
        assert tls.connection_pool.max_connections == settings.max_connections
    finally:
        await tls.aclose()


async def test_redis_without_entra_is_the_plain_url(redis_url: str) -> None:
    client = create_redis_client(RedisSettings(url=redis_url), decode_responses=True)
    try:
        assert "credential_provider" not in client.connection_pool.connection_kwargs
        await client.set("k", "v")
        assert await client.get("k") == "v"
    finally:
        await client.aclose()


class FakeSequenceCredential(FakeAsyncCredential):
    """Fake async Azure credential whose n-th token is ``token-n`` (to set as Redis passwords)."""

    async def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        self.scopes.append(scopes)
        return AccessToken(f"token-{len(self.scopes)}", int(time.time() + self.lifetime))


async def test_redis_entra_authenticates_and_reauthenticates_on_refresh(
    redis_server_factory: Callable[[], RedisServer],
) -> None:
    server = redis_server_factory()
    admin = Redis.from_url(server.url)
    await admin.acl_setuser(
        "workload-oid",
        enabled=True,
        passwords=[f"+token-{n}" for n in range(1, 30)],
        keys=["*"],
        commands=["+@all"],
    )
    # Tokens are due for refresh 0.5-1.5 s after issue: the refresh margin is five minutes and
    # ``AccessToken.expires_on`` is whole seconds.
    credential = FakeSequenceCredential(lifetime=301.5)
    settings = RedisSettings(url=server.url, use_entra_id=True, username="workload-oid")
    client = create_redis_client(settings, credential)
    try:
        assert await client.ping()
        assert await client.acl_whoami() == "workload-oid"
        assert credential.scopes == [(REDIS_SCOPE,)]
        # The first AUTH travels inside HELLO; AUTH itself is only the re-authentication.
        assert "cmdstat_auth" not in await admin.info("commandstats")
        stats: dict[str, Any] = {}
        for _ in range(200):
            await asyncio.sleep(0.02)
            stats = (await admin.info("commandstats")).get("cmdstat_auth", {})
            if stats:
                break
        # Refreshed in the background and re-sent on the idle pooled connection.
        assert credential.scopes[:2] == [(REDIS_SCOPE,), (REDIS_SCOPE,)]
        assert stats["calls"] >= 1
        assert stats["failed_calls"] == 0
        assert await client.ping()
    finally:
        await client.aclose()
        await admin.aclose()


def test_mongo_kwargs_without_oidc_are_only_pool_settings() -> None:
    kwargs = mongo_client_kwargs(MongoSettings(server_selection_timeout=2.5, max_pool_size=7))
    assert kwargs == {"serverSelectionTimeoutMS": 2500, "maxPoolSize": 7}


async def test_mongo_oidc_uses_the_azure_credential_callback() -> None:
    credential = FakeSyncCredential()
    settings = MongoSettings(
        url="mongodb://cluster.example.net:10260/?tls=true",
        use_oidc=True,
        oidc_resource="https://ossrdbms-aad.database.windows.net",
    )
    kwargs = mongo_client_kwargs(settings, credential)
    assert kwargs["authMechanism"] == "MONGODB-OIDC"
    callback = kwargs["authMechanismProperties"]["OIDC_CALLBACK"]
    assert isinstance(callback, AzureIdentityOIDCCallback)
    from pymongo.auth_oidc import OIDCCallbackContext

    result = callback.fetch(OIDCCallbackContext(timeout_seconds=5, username="", version=1))
    assert result.access_token == "mongo-token"
    assert result.expires_in_seconds is not None
    assert 1700 < result.expires_in_seconds <= 1800
    assert credential.scopes == [("https://ossrdbms-aad.database.windows.net/.default",)]
    client = create_mongo_client(settings, credential)  # PyMongo accepts the configuration
    await client.close()


def test_mongo_oidc_imds_provider_and_missing_resource() -> None:
    settings = MongoSettings(
        use_oidc=True, oidc_resource="https://ossrdbms-aad.database.windows.net"
    )
    kwargs = mongo_client_kwargs(settings, imds=True, environ={"AZURE_CLIENT_ID": "client-1"})
    assert kwargs["authMechanismProperties"] == {
        "ENVIRONMENT": "azure",
        "TOKEN_RESOURCE": "https://ossrdbms-aad.database.windows.net",
    }
    assert kwargs["username"] == "client-1"
    with pytest.raises(CredentialConfigurationError, match="oidc_resource"):
        mongo_client_kwargs(MongoSettings(use_oidc=True))


async def test_key_vault_secret_client_is_keyless() -> None:
    credential = FakeAsyncCredential()
    client = create_secret_client("https://drones-kv.vault.azure.net/", credential)
    assert client.vault_url == "https://drones-kv.vault.azure.net"
    await client.close()
    with pytest.raises(CredentialConfigurationError, match="https"):
        create_secret_client("http://drones-kv.vault.azure.net/", credential)
