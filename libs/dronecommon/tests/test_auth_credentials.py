"""Outbound credentials: the workload identity or the developer chain, bearer tokens cached and
refreshed before expiry, and which token provider a service uses for each target.

Microsoft Entra cannot run here: the Azure side is tested at the SDK boundary with fake
credentials (named as such); the development issuer's tokens are checked by the real auth
dependency.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import jwt
import pytest
from azure.identity.aio import (
    AzureCliCredential,
    AzureDeveloperCliCredential,
    ChainedTokenCredential,
    EnvironmentCredential,
    WorkloadIdentityCredential,
)

from dronecommon.auth import (
    BearerTokenProvider,
    CredentialConfigurationError,
    DevTokenProvider,
    auth_dependency,
    create_credential,
    create_sync_credential,
    outbound_token_provider,
    workload_identity_configured,
)
from dronecommon.settings import AuthSettings
from dronetesting.clocks import FakeClock
from dronetesting.tokens import LocalIssuer

from .conftest import FakeAsyncCredential, bearer, call, make_app


def _workload_env(tmp_path: Path) -> dict[str, str]:
    token_file = tmp_path / "azure-identity-token"
    token_file.write_text("federated-token")
    return {
        "AZURE_FEDERATED_TOKEN_FILE": str(token_file),
        "AZURE_CLIENT_ID": "client-1",
        "AZURE_TENANT_ID": "tenant-1",
        "AZURE_AUTHORITY_HOST": "https://login.microsoftonline.com/",
    }


async def test_workload_identity_when_the_webhook_injected_its_variables(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in _workload_env(tmp_path).items():
        monkeypatch.setenv(name, value)
    assert workload_identity_configured()
    async with create_credential() as credential:
        assert isinstance(credential, WorkloadIdentityCredential)
        client = credential._client
        assert (client._client_id, client._tenant_id) == ("client-1", "tenant-1")
    sync_credential = create_sync_credential()
    assert type(sync_credential).__name__ == "WorkloadIdentityCredential"
    sync_credential.close()  # type: ignore[attr-defined]


async def test_developer_chain_without_workload_identity(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AZURE_FEDERATED_TOKEN_FILE", raising=False)
    assert not workload_identity_configured()
    async with create_credential() as credential:
        assert isinstance(credential, ChainedTokenCredential)
        kinds = [type(item) for item in credential.credentials]
        assert kinds == [EnvironmentCredential, AzureCliCredential, AzureDeveloperCliCredential]


def test_incomplete_workload_identity_names_the_missing_variables(tmp_path: Path) -> None:
    environ = _workload_env(tmp_path)
    del environ["AZURE_TENANT_ID"]
    with pytest.raises(CredentialConfigurationError, match="AZURE_TENANT_ID is not"):
        create_credential(environ=environ)


async def test_bearer_token_provider_caches_and_refreshes_before_expiry() -> None:
    credential = FakeAsyncCredential(lifetime=3600)
    clock = FakeClock(time.time())
    provider = BearerTokenProvider(credential, "api://x/.default", clock=clock)
    first = await provider.token()
    assert await provider.token() == first
    assert credential.scopes == [("api://x/.default",)]
    clock.advance(3600 - 299)  # inside the five-minute margin
    assert await provider.token() != first
    assert len(credential.scopes) == 2


async def test_bearer_token_provider_fetches_once_for_concurrent_callers() -> None:
    credential = FakeAsyncCredential()
    provider = BearerTokenProvider(credential, "s")
    tokens = await asyncio.gather(*(provider.token() for _ in range(20)))
    assert len(set(tokens)) == 1
    assert len(credential.scopes) == 1


async def test_bearer_token_provider_keeps_a_valid_token_when_refresh_fails() -> None:
    credential = FakeAsyncCredential(lifetime=3600)
    clock = FakeClock(time.time())
    provider = BearerTokenProvider(credential, "s", clock=clock)
    first = await provider.token()
    credential.fail = True
    clock.advance(3500)  # due for refresh, not expired
    assert await provider.token() == first
    clock.advance(200)  # expired
    with pytest.raises(RuntimeError, match="unreachable"):
        await provider.token()


async def test_outbound_token_provider_choice(dev_issuer: LocalIssuer) -> None:
    assert outbound_token_provider(AuthSettings(), target="delivery") is None
    scopes = {"delivery": "api://11111111-2222-3333-4444-555555555555/.default"}
    entra = outbound_token_provider(
        AuthSettings(outbound_scopes=scopes), FakeAsyncCredential(), target="delivery"
    )
    assert isinstance(entra, BearerTokenProvider)
    assert entra.scope == scopes["delivery"]
    assert outbound_token_provider(AuthSettings(outbound_scopes=scopes), target="package") is None
    with pytest.raises(CredentialConfigurationError, match=r"outbound_scopes\.delivery"):
        outbound_token_provider(AuthSettings(outbound_scopes=scopes), target="delivery")

    dev_settings = AuthSettings(
        outbound_scopes={"delivery": f"api://{dev_issuer.audience}/.default"},
        dev_signing_key_file=str(dev_issuer.key_file),
        dev_roles={"delivery": ["Deliveries.Write"], "package": ["Packages.Write"]},
        issuer=dev_issuer.issuer.issuer,
    )
    dev = outbound_token_provider(dev_settings, caller="workflow", target="delivery")
    assert isinstance(dev, DevTokenProvider)
    token = await dev.token()
    assert await dev.token() == token  # cached
    response = await call(make_app(auth_dependency(dev_issuer.settings)), bearer(token))
    assert response.status_code == 200
    assert response.json()["appId"] == "workflow"
    # The roles assigned for that service only, and the v2 audience of the scope.
    assert response.json()["roles"] == ["Deliveries.Write"]
    assert jwt.decode(token, options={"verify_signature": False})["aud"] == dev_issuer.audience
    await dev.close()
