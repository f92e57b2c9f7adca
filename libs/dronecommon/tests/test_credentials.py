"""Which processes sign in with the workload identity: the one rule every service uses."""

from __future__ import annotations

from pathlib import Path

import pytest
from azure.identity.aio import WorkloadIdentityCredential
from pydantic import SecretStr

from dronecommon.auth.credentials import credential_for, credential_needed, keyless_queue
from dronecommon.settings import AuthSettings, QueueSettings, RedisSettings

SERVICE_BUS = QueueSettings(transport="servicebus", servicebus_namespace="drones")
EMULATOR = QueueSettings(
    transport="servicebus", servicebus_connection_string=SecretStr("Endpoint=sb://localhost/")
)


def test_keyless_only_when_something_signs_in_with_the_identity() -> None:
    assert not credential_needed()
    assert not credential_needed(redis=RedisSettings(), queue=QueueSettings())
    assert credential_needed(redis=RedisSettings(use_entra_id=True))
    assert credential_needed(queue=SERVICE_BUS)
    assert not credential_needed(queue=EMULATOR)
    assert credential_needed(
        outbound=AuthSettings(outbound_scopes={"package": "api://package/.default"})
    )
    assert not credential_needed(
        outbound=AuthSettings(
            outbound_scopes={"package": "api://package/.default"}, dev_signing_key_file="k"
        )
    )
    assert not credential_needed(outbound=AuthSettings())


def test_an_empty_connection_string_is_no_connection_string() -> None:
    empty = QueueSettings(transport="servicebus", servicebus_connection_string=SecretStr(""))
    assert keyless_queue(empty)
    assert not keyless_queue(EMULATOR)
    assert not keyless_queue(QueueSettings(servicebus_namespace="drones"))  # Redis transport


async def test_no_credential_is_made_when_none_is_needed() -> None:
    async with credential_for(redis=RedisSettings(), queue=EMULATOR) as credential:
        assert credential is None


async def test_the_workload_identity_when_one_is_needed(tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("federated-token")
    environ = {
        "AZURE_FEDERATED_TOKEN_FILE": str(token_file),
        "AZURE_CLIENT_ID": "client-1",
        "AZURE_TENANT_ID": "tenant-1",
    }
    async with credential_for(queue=SERVICE_BUS, environ=environ) as credential:
        assert isinstance(credential, WorkloadIdentityCredential)


async def test_a_misconfigured_identity_fails_before_anything_is_built(tmp_path: Path) -> None:
    environ = {"AZURE_FEDERATED_TOKEN_FILE": str(tmp_path / "token")}
    with pytest.raises(RuntimeError, match="AZURE_CLIENT_ID"):
        async with credential_for(redis=RedisSettings(use_entra_id=True), environ=environ):
            pass
