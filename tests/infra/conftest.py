"""What the Bicep tests share (imported: ``from .conftest import ...``): the repository's
paths, the services and environments, main.bicep (the ``main`` fixture), its modules and
parameter files, the resource names per environment, and the charts' values to compare with."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from dronetesting.stack import SERVICE_PORTS

from .bicep import BICEP_DIR, ROOT, BicepFile, Call, Expr, For, Interp, interpolate, load

CHARTS = ROOT / "charts"
GITOPS = ROOT / "infra" / "gitops"
SERVICES = tuple(SERVICE_PORTS)  # every service, the web app included
ENVIRONMENTS = ("dev", "prod")
MODULES = BICEP_DIR / "modules"


def rel(path: Path) -> str:
    return str(path.relative_to(ROOT))


@pytest.fixture(scope="module")
def main() -> BicepFile:
    return load(BICEP_DIR / "main.bicep")


def module(name: str) -> BicepFile:
    return load(MODULES / f"{name}.bicep")


def param_file(environment: str) -> BicepFile:
    return load(BICEP_DIR / f"main.{environment}.bicepparam")


def param_values(main: BicepFile, environment: str) -> dict[str, Any]:
    """main.bicep's parameter values for an environment: the file's, else the defaults."""
    values = {name: p.value for name, p in main.params.items() if p.has_value}
    values.update({name: p.value for name, p in param_file(environment).params.items()})
    return values


def merge(base: dict[str, Any], overlay: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in overlay.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def chart_values(service: str, environment: str) -> dict[str, Any]:
    chart = CHARTS / service
    base = yaml.safe_load((chart / "values.yaml").read_text(encoding="utf-8"))
    overlay = yaml.safe_load((chart / f"values-{environment}.yaml").read_text(encoding="utf-8"))
    return merge(base, overlay or {})


def yaml_file(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(data, dict), path
    return data


def literal(value: Any, where: str) -> Any:
    assert not isinstance(value, Expr | Interp | Call | For), f"{where}: not a literal: {value}"
    return value


def resolved_param(file: BicepFile, name: str) -> Any:
    """A module parameter's default (the value every caller here relies on)."""
    param = file.params[name]
    assert param.has_value, f"{file.rel}: param {name} has no default"
    return param.value


def names(main: BicepFile, environment: str) -> dict[str, str]:
    values = param_values(main, environment)
    raw = literal(main.variables["names"].value, "names")
    scope = {"namePrefix": values["namePrefix"], "environment": values["environment"]}
    return {key: interpolate(value, scope) for key, value in raw.items()}
