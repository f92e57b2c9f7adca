"""The service entry point: --help generated from the settings class, bad settings exit 2."""

from __future__ import annotations

from typing import ClassVar, Literal

import pytest
from pydantic import BaseModel, Field, SecretStr
from pydantic_settings import SettingsConfigDict

from dronecommon.cli import environment_help, environment_variables, service_main
from dronecommon.settings import RedisSettings, ServiceSettings


class Spot(BaseModel):
    name: str
    latitude: float = 0.0


class Inner(BaseModel):
    mode: Literal["fast", "safe"] = "safe"
    token: SecretStr | None = SecretStr("s3cret-value")
    spots: list[Spot] = Field(
        default_factory=lambda: [Spot(name=f"spot-{n}", latitude=n) for n in range(8)]
    )
    tags: list[str] = Field(default_factory=lambda: ["a"])


class ExampleSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="EXAMPLE_", env_nested_delimiter="__")
    service_name: ClassVar[str] = "example"

    port: int = 8099
    limit: float = Field(default=2.5, description="seconds per call")
    empty: str = ""
    inner: Inner = Field(default_factory=Inner)
    redis: RedisSettings = Field(default_factory=RedisSettings)


def test_every_variable_is_listed_with_its_default() -> None:
    found = {var.name: var for var in environment_variables(ExampleSettings)}
    assert found["EXAMPLE_PORT"].default == "8099"
    assert found["EXAMPLE_LIMIT"].default == "2.5"
    assert found["EXAMPLE_LIMIT"].description == "seconds per call"
    assert found["EXAMPLE_EMPTY"].default == '""'
    assert found["EXAMPLE_LOG_JSON"].default == "true"
    assert found["EXAMPLE_INNER__MODE"].choices == ("fast", "safe")
    assert found["EXAMPLE_INNER__TAGS"].default == '["a"]'
    assert found["EXAMPLE_REDIS__URL"].default == "redis://127.0.0.1:6379/0"
    assert found["EXAMPLE_REDIS__USERNAME"].default == "(unset)"
    assert found["EXAMPLE_AUTH__ENABLED"].default == "true"
    assert found["EXAMPLE_HTTP__RETRIES"].default == "3"
    # Long JSON defaults are summarised, secrets never shown.
    assert found["EXAMPLE_INNER__SPOTS"].default == f"(a JSON list of 8: see {__name__})"
    assert found["EXAMPLE_INNER__TOKEN"].default == "(set)"


def test_the_services_own_sections_come_before_the_shared_ones() -> None:
    sections = [var.section for var in environment_variables(ExampleSettings)]
    order = list(dict.fromkeys(sections))
    assert order == ["", "inner", "redis", "telemetry", "auth", "http"]


def test_defaults_are_the_classes_not_the_environments(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EXAMPLE_PORT", "1234")
    monkeypatch.setenv("EXAMPLE_INNER__MODE", "fast")
    text = environment_help(ExampleSettings)
    assert "1234" not in text
    assert "s3cret" not in text
    lines = {line.split()[0]: line for line in text.splitlines() if line.strip()}
    assert lines["EXAMPLE_PORT"].split()[1] == "8099"
    assert lines["EXAMPLE_INNER__MODE"].split()[1:] == ["safe", "(fast", "|", "safe)"]
    assert "[inner]" in lines


def test_sections_can_be_chosen() -> None:
    names = [var.name for var in environment_variables(ExampleSettings, sections=("redis",))]
    assert names
    assert all(name.startswith("EXAMPLE_REDIS__") for name in names)


def test_help_exits_0_without_loading_settings_or_serving(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EXAMPLE_PORT", "not-a-port")  # --help must not read it
    with pytest.raises(SystemExit) as exited:
        service_main(
            ExampleSettings,
            "example.main:create_app",
            ["--help"],
            description="An example service.",
            readme="services/example/README.md",
        )
    assert exited.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: python -m example [-h]")
    assert "An example service." in out
    assert "EXAMPLE_INNER__MODE" in out
    assert "http://127.0.0.1:8099/docs" in out
    assert "http://127.0.0.1:8099/redoc" in out
    assert "services/example/README.md" in out


def test_bad_settings_exit_2_naming_the_variable(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EXAMPLE_LIMIT", "soon")
    code = service_main(ExampleSettings, "example.main:create_app", [], description="-", readme="-")
    assert code == 2
    assert "EXAMPLE_LIMIT" in capsys.readouterr().err


def test_unknown_arguments_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        service_main(ExampleSettings, "x:y", ["--port", "1"], description="-", readme="-")
    assert exited.value.code == 2
    assert "unrecognized arguments" in capsys.readouterr().err
