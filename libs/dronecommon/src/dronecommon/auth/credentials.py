"""Which Azure identity a process uses, and cached bearer tokens from it.

In AKS the workload identity webhook injects ``AZURE_FEDERATED_TOKEN_FILE``, ``AZURE_CLIENT_ID``
and ``AZURE_TENANT_ID`` (plus ``AZURE_AUTHORITY_HOST``) into pods whose service account is
federated with a managed identity. :func:`create_credential` returns a
:class:`~azure.identity.aio.WorkloadIdentityCredential` when that token file is present and a
developer chain otherwise.

Which processes need one at all is decided once, by :func:`credential_needed`: a client signs in
with the workload identity (is *keyless*) when Redis is asked for Microsoft Entra ID, when the
queue is Service Bus without a connection string (a namespace), or when outbound calls ask for a
scope without a development signing key. :func:`credential_for` opens the credential only then
and closes it on the way out.

Why an explicit chain rather than ``DefaultAzureCredential``: the developer chain is
``EnvironmentCredential`` (a service principal in ``AZURE_CLIENT_SECRET``/certificate variables, as
CI uses) → ``AzureCliCredential`` (``az login``) → ``AzureDeveloperCliCredential``
(``azd auth login``). ``DefaultAzureCredential`` would also probe the instance metadata endpoint
(``ManagedIdentityCredential``), which on a laptop or a CI VM either stalls for its timeout or
silently picks up the *machine's* identity, plus several IDE/broker caches. In Azure the process is
always told its identity by the webhook, so guessing is never needed: a missing variable is a
configuration error, reported by name. Construction does no I/O; tokens are fetched on first use.

:class:`BearerTokenProvider` keeps one token per scope and refreshes it five minutes before it
expires (one refresh at a time; if a refresh fails while the old token is still valid, the old
token is used and the refresh is retried on the next call). It backs outbound service-to-service
calls and the Redis Entra credential provider. :func:`outbound_token_provider` picks the token
source for each called service from :class:`~dronecommon.settings.AuthSettings` (one scope per
service, ``outbound_scopes``): the development issuer when a dev signing key is configured, Entra
otherwise.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any, Protocol

from azure.core.credentials import AccessToken, TokenCredential
from azure.core.credentials_async import AsyncTokenCredential
from azure.identity import AzureCliCredential as SyncAzureCliCredential
from azure.identity import AzureDeveloperCliCredential as SyncAzureDeveloperCliCredential
from azure.identity import ChainedTokenCredential as SyncChainedTokenCredential
from azure.identity import EnvironmentCredential as SyncEnvironmentCredential
from azure.identity import WorkloadIdentityCredential as SyncWorkloadIdentityCredential
from azure.identity.aio import (
    AzureCliCredential,
    AzureDeveloperCliCredential,
    ChainedTokenCredential,
    EnvironmentCredential,
    WorkloadIdentityCredential,
)

from dronecommon.auth.devissuer import (
    DEFAULT_DEV_ISSUER,
    DevIssuer,
    DevTokenProvider,
    audience_from_scope,
)
from dronecommon.settings import (
    AuthSettings,
    QueueSettings,
    RedisSettings,
    TelemetryStreamSettings,
)

logger = logging.getLogger(__name__)

FEDERATED_TOKEN_FILE = "AZURE_FEDERATED_TOKEN_FILE"  # noqa: S105 - a variable name
CLIENT_ID = "AZURE_CLIENT_ID"
TENANT_ID = "AZURE_TENANT_ID"
DEFAULT_REFRESH_MARGIN = 300.0


class CredentialConfigurationError(RuntimeError):
    """The workload identity variables are incomplete; the message names the missing ones."""


class AsyncTokenSource(Protocol):
    """Anything with the ``get_token`` of an async Azure credential."""

    async def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken: ...


class SyncTokenSource(Protocol):
    """Anything with the ``get_token`` of a sync Azure credential."""

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken: ...


class TokenProvider(Protocol):
    """A source of bearer tokens for one audience (Entra or the development issuer)."""

    async def token(self) -> str: ...

    async def close(self) -> None: ...


def _workload_identity(environ: Mapping[str, str]) -> tuple[str, str, str] | None:
    """``(token_file, client_id, tenant_id)`` when the webhook configured the pod, else None."""
    token_file = environ.get(FEDERATED_TOKEN_FILE)
    if not token_file:
        return None
    missing = [name for name in (CLIENT_ID, TENANT_ID) if not environ.get(name)]
    if missing:
        raise CredentialConfigurationError(
            f"{FEDERATED_TOKEN_FILE} is set but {', '.join(missing)} "
            f"{'is' if len(missing) == 1 else 'are'} not: workload identity needs all three"
        )
    return token_file, environ[CLIENT_ID], environ[TENANT_ID]


def workload_identity_configured(environ: Mapping[str, str] | None = None) -> bool:
    """Whether the AKS workload identity webhook configured this process."""
    return _workload_identity(os.environ if environ is None else environ) is not None


def create_credential(*, environ: Mapping[str, str] | None = None) -> AsyncTokenCredential:
    """The async credential for this process: workload identity in AKS, developer chain elsewhere.

    The caller owns the credential and closes it (``await credential.close()``) at shutdown.
    """
    found = _workload_identity(os.environ if environ is None else environ)
    if found is not None:
        token_file, client_id, tenant_id = found
        return WorkloadIdentityCredential(
            tenant_id=tenant_id, client_id=client_id, token_file_path=token_file
        )
    return ChainedTokenCredential(
        EnvironmentCredential(), AzureCliCredential(), AzureDeveloperCliCredential()
    )


def keyless_queue(queue: QueueSettings) -> bool:
    """Service Bus reached by namespace with the workload identity (no connection string)."""
    secret = queue.servicebus_connection_string
    return queue.transport == "servicebus" and not (secret and secret.get_secret_value())


def keyless_telemetry_stream(stream: TelemetryStreamSettings) -> bool:
    """Event Hubs reached by namespace with the workload identity (no connection string)."""
    secret = stream.eventhubs_connection_string
    return stream.transport == "eventhubs" and not (secret and secret.get_secret_value())


def credential_needed(
    *,
    redis: RedisSettings | None = None,
    queue: QueueSettings | None = None,
    outbound: AuthSettings | None = None,
    telemetry_stream: TelemetryStreamSettings | None = None,
) -> bool:
    """Whether any of the clients these settings describe signs in with the workload identity.

    Pass the settings of the clients the process really builds: ``redis`` (Entra ID),
    ``queue`` (Service Bus by namespace), ``outbound`` (tokens for service-to-service calls),
    ``telemetry_stream`` (Event Hubs by namespace).
    """
    return (
        (redis is not None and redis.use_entra_id)
        or (queue is not None and keyless_queue(queue))
        or (telemetry_stream is not None and keyless_telemetry_stream(telemetry_stream))
        or (
            outbound is not None
            and any(outbound.outbound_scopes.values())
            and not outbound.dev_signing_key_file
        )
    )


@asynccontextmanager
async def credential_for(
    *,
    redis: RedisSettings | None = None,
    queue: QueueSettings | None = None,
    outbound: AuthSettings | None = None,
    telemetry_stream: TelemetryStreamSettings | None = None,
    environ: Mapping[str, str] | None = None,
) -> AsyncIterator[AsyncTokenCredential | None]:
    """The process credential when :func:`credential_needed` says so (else None), closed on exit."""
    if not credential_needed(
        redis=redis, queue=queue, outbound=outbound, telemetry_stream=telemetry_stream
    ):
        yield None
        return
    credential = create_credential(environ=environ)
    try:
        yield credential
    finally:
        await credential.close()


def create_sync_credential(*, environ: Mapping[str, str] | None = None) -> TokenCredential:
    """The same choice as :func:`create_credential`, for SDKs that call back synchronously.

    PyMongo's OIDC callback is synchronous (the async client runs it in a worker thread).
    """
    found = _workload_identity(os.environ if environ is None else environ)
    if found is not None:
        token_file, client_id, tenant_id = found
        return SyncWorkloadIdentityCredential(
            tenant_id=tenant_id, client_id=client_id, token_file_path=token_file
        )
    return SyncChainedTokenCredential(
        SyncEnvironmentCredential(), SyncAzureCliCredential(), SyncAzureDeveloperCliCredential()
    )


class BearerTokenProvider:
    """One cached bearer token for ``scope``, refreshed ``refresh_margin`` seconds before expiry."""

    def __init__(
        self,
        credential: AsyncTokenSource,
        scope: str,
        *,
        refresh_margin: float = DEFAULT_REFRESH_MARGIN,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.scope = scope
        self._credential = credential
        self._refresh_margin = refresh_margin
        self._clock = clock
        self._token: AccessToken | None = None
        self._lock: asyncio.Lock | None = None

    @property
    def refresh_margin(self) -> float:
        """Seconds before expiry at which the token is refreshed."""
        return self._refresh_margin

    @property
    def cached(self) -> AccessToken | None:
        """The token held right now, if any (no refresh)."""
        return self._token

    def _fresh(self, token: AccessToken) -> bool:
        return self._clock() < token.expires_on - self._refresh_margin

    async def access_token(self) -> AccessToken:
        """The cached token, refreshed first when it is within the margin of its expiry."""
        token = self._token
        if token is not None and self._fresh(token):
            return token
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            token = self._token
            if token is not None and self._fresh(token):
                return token  # another task refreshed it while this one waited
            try:
                token = await self._credential.get_token(self.scope)
            except Exception:
                stale = self._token
                if stale is not None and self._clock() < stale.expires_on:
                    logger.warning(
                        "token refresh failed; using the current token until it expires",
                        extra={"scope": self.scope},
                        exc_info=True,
                    )
                    return stale
                raise
            self._token = token
            return token

    async def token(self) -> str:
        """The bearer token string."""
        return (await self.access_token()).token

    async def close(self) -> None:
        """Nothing to release: the credential belongs to whoever created it."""


def outbound_token_provider(
    settings: AuthSettings,
    credential: AsyncTokenSource | None = None,
    *,
    caller: str = "service",
    target: str,
) -> TokenProvider | None:
    """Where outbound calls to the service ``target`` get their bearer token, or None for none.

    - no ``outbound_scopes[target]``: None (calls go out without ``Authorization``);
    - ``dev_signing_key_file`` set: tokens minted locally by the development issuer, with
      ``azp``/``oid``/``sub`` = ``caller``, the audience a v2 token for the scope carries and
      the app roles ``dev_roles[target]`` (what Entra's app role assignments would give);
    - otherwise: Entra tokens for the scope from ``credential`` (required then).
    """
    scope = settings.outbound_scopes.get(target)
    if not scope:
        return None
    if settings.dev_signing_key_file:
        key_file = settings.dev_signing_key_file
        issuer = DevIssuer.load(key_file, settings.issuer or DEFAULT_DEV_ISSUER)
        return DevTokenProvider(
            issuer,
            audience=audience_from_scope(scope),
            caller=caller,
            roles=settings.dev_roles.get(target, ()),
        )
    if credential is None:
        raise CredentialConfigurationError(
            f"auth.outbound_scopes.{target} is set but no credential was given for it"
        )
    return BearerTokenProvider(credential, scope)
