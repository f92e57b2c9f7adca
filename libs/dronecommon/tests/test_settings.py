"""Shared settings rules: production never serves an open API, nor trusts the development
issuer (one validator, ``ServiceSettings``)."""

from __future__ import annotations

from typing import ClassVar

import pytest
from pydantic import Field
from pydantic_settings import SettingsConfigDict

from dronecommon.settings import RedisSettings, ServiceSettings, SettingsError, load_settings


class ProbeSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="PROBE_", env_nested_delimiter="__")
    service_name: ClassVar[str] = "probe"
    redis: RedisSettings = Field(default_factory=RedisSettings)


class UnprefixedSettings(ServiceSettings):
    pass


AUTH_ON = {
    "enabled": True,
    "issuer": "https://login.microsoftonline.com/tenant/v2.0",
    "public_audience": "00000000-0000-0000-0000-0000000000a1",
    "jwks_url": "https://login.microsoftonline.com/tenant/discovery/v2.0/keys",
}


def test_production_refuses_to_start_with_auth_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROBE_ENVIRONMENT", "production")
    monkeypatch.setenv("PROBE_AUTH__ENABLED", "false")
    with pytest.raises(SettingsError, match="PROBE_AUTH__ENABLED is false"):
        load_settings(ProbeSettings)
    monkeypatch.setenv("PROBE_AUTH__ENABLED", "true")
    with pytest.raises(SettingsError, match="PROBE_AUTH__ISSUER") as missing:
        load_settings(ProbeSettings)  # on, but without what it needs to check a token
    assert "PROBE_AUTH__AUDIENCE or PROBE_AUTH__PUBLIC_AUDIENCE" in str(missing.value)
    assert "PROBE_AUTH__JWKS_URL" in str(missing.value)
    for name, value in AUTH_ON.items():
        monkeypatch.setenv(f"PROBE_AUTH__{name.upper()}", str(value).lower())
    assert load_settings(ProbeSettings).auth.enabled


@pytest.mark.parametrize(
    "audience", [{"audience": "00000000-0000-0000-0000-0000000000b2"}, {"public_audience": "x"}]
)
def test_either_audience_lets_production_check_tokens(audience: dict[str, str]) -> None:
    auth = {key: value for key, value in AUTH_ON.items() if key != "public_audience"}
    settings = ProbeSettings.model_validate(
        {"environment": "production", "auth": {**auth, **audience}}
    )
    assert settings.environment == "production"


def test_production_refuses_the_development_issuer() -> None:
    with pytest.raises(ValueError, match="development issuer is never used in production"):
        ProbeSettings.model_validate(
            {"environment": "production", "auth": {**AUTH_ON, "dev_signing_key_file": "key.pem"}}
        )


def test_production_names_the_variables_without_a_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENVIRONMENT", "production")
    monkeypatch.setenv("AUTH__ENABLED", "false")
    with pytest.raises(SettingsError, match="AUTH__ENABLED is false but ENVIRONMENT is production"):
        load_settings(UnprefixedSettings)
    monkeypatch.setenv("AUTH__ENABLED", "true")
    for name, value in AUTH_ON.items():
        monkeypatch.setenv(f"AUTH__{name.upper()}", str(value).lower())
    monkeypatch.setenv("AUTH__DEV_SIGNING_KEY_FILE", "/keys/signing-key.pem")
    with pytest.raises(SettingsError, match="development issuer is never used in production"):
        load_settings(UnprefixedSettings)
    monkeypatch.delenv("AUTH__DEV_SIGNING_KEY_FILE")
    assert load_settings(UnprefixedSettings).environment == "production"
    monkeypatch.setenv("ENVIRONMENT", "development")
    monkeypatch.setenv("AUTH__ENABLED", "false")
    assert load_settings(UnprefixedSettings).auth.enabled is False


@pytest.mark.parametrize("environment", ["development", "test"])
def test_other_environments_may_switch_tokens_off(environment: str) -> None:
    assert ProbeSettings().auth.enabled  # on unless switched off
    settings = ProbeSettings.model_validate(
        {"environment": environment, "auth": {"enabled": False}}
    )
    assert not settings.auth.enabled


def test_settings_errors_name_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROBE_PORT", "not-a-port")
    monkeypatch.setenv("PROBE_REDIS__SOCKET_TIMEOUT", "-1")
    with pytest.raises(SettingsError) as raised:
        load_settings(ProbeSettings)
    assert "PROBE_PORT" in str(raised.value)
    assert "PROBE_REDIS__SOCKET_TIMEOUT" in str(raised.value)


def test_required_settings_name_the_missing_variable() -> None:
    class Strict(ProbeSettings):
        model_config = SettingsConfigDict(env_prefix="STRICT_", env_nested_delimiter="__")
        api_key: str

    with pytest.raises(SettingsError, match="STRICT_API_KEY: Field required"):
        load_settings(Strict)


def test_settings_read_nested_values_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROBE_REDIS__URL", "redis://cache:6380/2")
    monkeypatch.setenv("PROBE_HTTP__RETRIES", "7")
    settings = load_settings(ProbeSettings)
    assert settings.redis.url == "redis://cache:6380/2"
    assert settings.http.retries == 7
