"""The settings each chart hands its service, against the service's own settings class: every env
name is a setting of the service, and the rendered settings pass the production rules.
"""

from __future__ import annotations

import importlib
import os
import re
from typing import Any

import pytest
import yaml

from .conftest import (
    CHARTS,
    COMBO_IDS,
    COMBOS,
    ENVIRONMENTS,
    SERVICES,
    Rendered,
    deployment,
    env_of,
)


def settings_class(service: str) -> type[Any] | None:
    """The service's pydantic-settings class, when its package is importable here."""
    try:
        module = importlib.import_module(f"{service}.settings")
    except ImportError:
        return None
    from dronecommon.settings import ServiceSettings

    found = [
        value
        for value in vars(module).values()
        if isinstance(value, type)
        and issubclass(value, ServiceSettings)
        and value is not ServiceSettings
        and value.__module__ == module.__name__
    ]
    return found[0] if len(found) == 1 else None


def resolves(model: type[Any], parts: list[str]) -> bool:
    """Whether env name parts (lower-case, split on `__`) name a field of the settings model."""
    from pydantic import BaseModel

    fields = model.model_fields
    head, rest = parts[0], parts[1:]
    if head not in fields:
        return False
    if not rest:
        return True
    annotation = fields[head].annotation
    if getattr(annotation, "__origin__", None) is dict:
        return len(rest) == 1  # a mapping's key (``OUTBOUND_SCOPES__PACKAGE``)
    candidates = [annotation, *getattr(annotation, "__args__", ())]
    return any(
        isinstance(candidate, type)
        and issubclass(candidate, BaseModel)
        and resolves(candidate, rest)
        for candidate in candidates
    )


@pytest.mark.parametrize("service", SERVICES)
def test_env_names_are_settings_of_the_service(rendered: Rendered, service: str) -> None:
    model = settings_class(service)
    if model is None:
        pytest.skip(f"{service}.settings is not importable yet: env names checked by prefix only")
    prefix = f"{service.upper()}_"
    for env in ENVIRONMENTS:
        for name in env_of(rendered[service, env]):
            if not name.startswith(prefix):
                assert name in {"APPLICATIONINSIGHTS_CONNECTION_STRING"} or re.match(
                    r"^OTEL_", name
                ), name
                continue
            parts = name[len(prefix) :].lower().split("__")
            assert resolves(model, parts), f"{name} is not a {model.__name__} setting"


PLACEHOLDER_ID = "00000000-0000-0000-0000-000000000000"


@pytest.mark.parametrize(("service", "env"), COMBOS, ids=COMBO_IDS)
def test_the_rendered_settings_pass_the_production_rules(
    rendered: Rendered, service: str, env: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every chart deploys with ENVIRONMENT=production: its plain settings must be ones a
    production service starts with (tokens on and checkable, no development issuer; the
    workflow's outbound scopes), or the pods would crash at start-up. What the pod gets from
    elsewhere is set as it would get it: the secrets the chart maps from Key Vault (a stand-in
    value: the test checks they are mapped, not what they are) and, with workload identity, the
    federated token file the webhook injects."""
    model = settings_class(service)
    if model is None:
        pytest.skip(f"{service}.settings is not importable here")
    from dronecommon.settings import load_settings

    prefix = f"{service.upper()}_"
    for name in [key for key in os.environ if key.startswith(prefix)]:
        monkeypatch.delenv(name)
    plain = {
        name: value
        for name, value in env_of(rendered[service, env]).items()
        if name.startswith(prefix) and isinstance(value, str)
    }
    assert plain[f"{prefix}ENVIRONMENT"] == "production"
    # The charts' application ids are one placeholder GUID; Flux's cluster-settings give each
    # API its own (infra/README.md), which is what a service and the public API need.
    own = f"{prefix}AUTH__AUDIENCE"
    if plain.get(own) == PLACEHOLDER_ID:
        plain[own] = f"{service}-application-id"
    docs = rendered[service, env]
    # The secrets the chart lists for Key Vault (values.yaml alone renders with Key Vault off;
    # every environment turns it on).
    listed = yaml.safe_load((CHARTS / service / "values.yaml").read_text(encoding="utf-8"))
    for secret in listed["keyVault"]["secrets"]:
        if secret["env"].startswith(prefix):
            plain.setdefault(secret["env"], f"stand-in for the {secret['objectName']} secret")
    labels = deployment(docs)["spec"]["template"]["metadata"]["labels"]
    if labels.get("azure.workload.identity/use") == "true":
        monkeypatch.setenv("AZURE_FEDERATED_TOKEN_FILE", "/var/run/secrets/azure/tokens/token")
    for name, value in plain.items():
        monkeypatch.setenv(name, value)
    assert load_settings(model).environment == "production"
