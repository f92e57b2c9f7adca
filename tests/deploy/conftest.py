"""Fixtures for the deployment tests: the charts rendered by the real Helm binary, once per session.

The charts are copied to a temporary directory and their file:// dependency on the library chart is
built there (`helm dependency update`, offline), so the tests never write into the working tree
and always render the library as it is on disk. Helm's cache and config go to the same directory.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from dronetesting.stack import SERVICE_PORTS

from .policy import of_kind

ROOT = Path(__file__).resolve().parents[2]
CHARTS = ROOT / "charts"
INFRA_K8S = ROOT / "infra" / "k8s"
GITOPS = ROOT / "infra" / "gitops"
NAMESPACE = "dronedelivery"
KUBE_VERSION = "1.37.0"

SERVICES = tuple(SERVICE_PORTS)  # every service, the web app included
# Environment -> values file layered on the chart's values.yaml ("default": values.yaml alone).
ENVIRONMENTS = {"default": "values.yaml", "dev": "values-dev.yaml", "prod": "values-prod.yaml"}
HELM_TIMEOUT = 60

Manifest = dict[str, Any]
# {(service, environment): the chart rendered with that environment's values}
Rendered = dict[tuple[str, str], list[Manifest]]


def deployment(docs: list[Manifest]) -> Manifest:
    (found,) = of_kind(docs, "Deployment")
    return found


def container(docs: list[Manifest]) -> Manifest:
    found: Manifest
    (found,) = deployment(docs)["spec"]["template"]["spec"]["containers"]
    return found


def env_of(docs: list[Manifest]) -> dict[str, Any]:
    return {var["name"]: var.get("value", var.get("valueFrom")) for var in container(docs)["env"]}


@dataclass(frozen=True)
class Helm:
    """The Helm binary with an isolated home, run on the session's copy of the charts."""

    binary: Path
    charts: Path
    env: Mapping[str, str]

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [str(self.binary), *args],
            capture_output=True,
            text=True,
            timeout=HELM_TIMEOUT,
            env=dict(self.env),
            check=False,
        )
        if check and result.returncode != 0:
            pytest.fail(f"helm {' '.join(args)} failed:\n{result.stderr}{result.stdout}")
        return result

    def chart(self, service: str) -> Path:
        return self.charts / service

    def template(
        self, service: str, values_files: Sequence[str | Path] = (), *extra: str, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        args = ["template", service, str(self.chart(service)), "-n", NAMESPACE]
        args += ["--kube-version", KUBE_VERSION]
        for values in values_files:
            args += ["-f", str(values)]
        return self.run(*args, *extra, check=check)

    def render(self, service: str, environment: str, *extra: str) -> list[Manifest]:
        files = values_files(self.chart(service), environment)
        return parse_manifests(self.template(service, files, *extra).stdout)


def values_files(chart: Path, environment: str) -> list[Path]:
    """The values files Helm gets for an environment (values.yaml is always the chart default)."""
    name = ENVIRONMENTS[environment]
    return [] if name == "values.yaml" else [chart / name]


def parse_manifests(text: str) -> list[Manifest]:
    return [doc for doc in yaml.safe_load_all(text) if doc]


def load_yaml_documents(path: Path) -> list[Manifest]:
    return [doc for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if doc]


def find_helm() -> Path | None:
    local = ROOT / ".tools" / "bin" / "helm"
    if local.is_file() and os.access(local, os.X_OK):
        return local
    found = shutil.which("helm")
    return Path(found) if found else None


@pytest.fixture(scope="session")
def helm(tmp_path_factory: pytest.TempPathFactory) -> Helm:
    binary = find_helm()
    if binary is None:
        pytest.fail("helm not found: `make setup` builds it into .tools/bin")
    work = tmp_path_factory.mktemp("helm")
    charts = work / "charts"
    shutil.copytree(CHARTS, charts, ignore=shutil.ignore_patterns("charts", "Chart.lock", "*.tgz"))
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(work),
        "HELM_CACHE_HOME": str(work / "cache"),
        "HELM_CONFIG_HOME": str(work / "config"),
        "HELM_DATA_HOME": str(work / "data"),
    }
    built = Helm(binary, charts, env)
    for service in SERVICES:
        built.run("dependency", "update", "--skip-refresh", str(charts / service))
    return built


@pytest.fixture(scope="session")
def rendered(helm: Helm) -> Rendered:
    """Every chart rendered with every values file: {(service, environment): manifests}."""
    combos = [(service, env) for service in SERVICES for env in ENVIRONMENTS]
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = pool.map(lambda combo: helm.render(*combo), combos)
        return dict(zip(combos, results, strict=True))


@pytest.fixture(scope="session")
def infra_manifests() -> list[Manifest]:
    docs: list[Manifest] = []
    for path in sorted(INFRA_K8S.glob("*.yaml")):
        if path.name != "kustomization.yaml":
            docs += load_yaml_documents(path)
    return docs


def combos() -> Iterator[tuple[str, str]]:
    for service in SERVICES:
        for env in ENVIRONMENTS:
            yield service, env


COMBOS = list(combos())
COMBO_IDS = [f"{service}-{env}" for service, env in COMBOS]
