"""Shared settings rules: production never serves an open API."""

from __future__ import annotations

from typing import ClassVar

import pytest
from pydantic_settings import SettingsConfigDict

from dronecommon.settings import ServiceSettings, SettingsError, load_settings


class ProbeSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="PROBE_", env_nested_delimiter="__")
    service_name: ClassVar[str] = "probe"


AUTH_ON = {
    "enabled": True,
    "issuer": "https://login.microsoftonline.com/tenant/v2.0",
    "audience": "api://dronedelivery",
    "jwks_url": "https://login.microsoftonline.com/tenant/discovery/v2.0/keys",
}


def test_production_refuses_to_start_with_auth_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROBE_ENVIRONMENT", "production")
    with pytest.raises(SettingsError, match="PROBE_AUTH__ENABLED"):
        load_settings(ProbeSettings)
    monkeypatch.setenv("PROBE_AUTH__ENABLED", "true")
    with pytest.raises(SettingsError, match="PROBE_AUTH__ISSUER"):
        load_settings(ProbeSettings)  # on, but without what it needs to check a token
    for name, value in AUTH_ON.items():
        monkeypatch.setenv(f"PROBE_AUTH__{name.upper()}", str(value).lower())
    assert load_settings(ProbeSettings).auth.enabled


def test_production_refuses_the_development_issuer() -> None:
    with pytest.raises(ValueError, match="development issuer"):
        ProbeSettings.model_validate(
            {"environment": "production", "auth": {**AUTH_ON, "dev_signing_key_file": "key.pem"}}
        )


@pytest.mark.parametrize("environment", ["development", "test"])
def test_other_environments_may_run_without_auth(environment: str) -> None:
    assert not ProbeSettings(environment=environment).auth.enabled  # type: ignore[arg-type]
