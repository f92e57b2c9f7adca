"""The Flux layout (infra/gitops): every file loads, every path a kustomization or Flux object names
exists, the overlays select the right values files, the substituted identities are defined per
cluster, and the values each HelmRelease ends up with render the chart (helm template).

`kustomize` itself is used when `kubectl` is on PATH (`kubectl kustomize`); otherwise the path and
overlay checks below are what guards the layout.
"""

from __future__ import annotations

import copy
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from .conftest import GITOPS, ROOT, SERVICES, Helm, Manifest, load_yaml_documents, parse_manifests

ENVS = ("dev", "prod")
FLUX_APIS = {
    "HelmRelease": "helm.toolkit.fluxcd.io/v2",
    "Kustomization": "kustomize.toolkit.fluxcd.io/v1",
    "GitRepository": "source.toolkit.fluxcd.io/v1",
}
VARIABLE = re.compile(r"\$\{([A-Z0-9_]+)\}")


def yaml_files() -> list[Path]:
    return sorted(GITOPS.rglob("*.yaml"))


def kustomizations() -> list[Path]:
    return sorted(GITOPS.rglob("kustomization.yaml"))


def documents(directory: Path) -> list[Manifest]:
    """The objects a kustomization directory lists (recursively through its resources)."""
    (kustomization,) = load_yaml_documents(directory / "kustomization.yaml")
    docs: list[Manifest] = []
    for entry in kustomization.get("resources", []):
        target = (directory / entry).resolve()
        docs += documents(target) if target.is_dir() else load_yaml_documents(target)
    return docs


def merge(base: Any, patch: Any) -> Any:
    """Strategic merge as kustomize applies it to a custom resource: maps merge, lists replace."""
    if isinstance(base, dict) and isinstance(patch, dict):
        merged = dict(base)
        for key, value in patch.items():
            merged[key] = merge(base.get(key), value) if key in base else copy.deepcopy(value)
        return merged
    return copy.deepcopy(patch)


def overlay_releases(env: str) -> dict[str, Manifest]:
    """The HelmReleases of an environment: base with the overlay's patches applied."""
    directory = GITOPS / "apps" / env
    (kustomization,) = load_yaml_documents(directory / "kustomization.yaml")
    releases = {
        doc["metadata"]["name"]: doc for doc in documents(directory) if doc["kind"] == "HelmRelease"
    }
    for patch_ref in kustomization.get("patches", []):
        for patch in load_yaml_documents(directory / patch_ref["path"]):
            name = patch["metadata"]["name"]
            assert name in releases, f"{patch_ref['path']} patches {name}, which the base lacks"
            releases[name] = merge(releases[name], patch)
    return releases


def cluster_settings(env: str) -> dict[str, str]:
    (config_map,) = load_yaml_documents(GITOPS / "clusters" / env / "cluster-settings.yaml")
    assert config_map["metadata"] == {"name": "cluster-settings", "namespace": "flux-system"}
    return {key: str(value) for key, value in config_map["data"].items()}


def substitute(value: Any, variables: dict[str, str]) -> Any:
    text = yaml.safe_dump(value)
    return yaml.safe_load(VARIABLE.sub(lambda m: variables[m[1]], text))


@pytest.mark.parametrize("path", yaml_files(), ids=lambda p: str(p.relative_to(GITOPS)))
def test_every_file_loads(path: Path) -> None:
    docs = load_yaml_documents(path)
    assert docs
    for doc in docs:
        if doc.get("kind") in FLUX_APIS and path.name != "kustomization.yaml":
            assert doc["apiVersion"] == FLUX_APIS[doc["kind"]], path


@pytest.mark.parametrize("path", kustomizations(), ids=lambda p: str(p.parent.relative_to(GITOPS)))
def test_kustomization_paths_exist(path: Path) -> None:
    (kustomization,) = load_yaml_documents(path)
    assert kustomization["apiVersion"] == "kustomize.config.k8s.io/v1beta1"
    for entry in kustomization.get("resources", []):
        target = path.parent / entry
        assert target.is_file() or (target / "kustomization.yaml").is_file(), f"{path}: {entry}"
    for patch in kustomization.get("patches", []):
        assert (path.parent / patch["path"]).is_file(), f"{path}: {patch['path']}"


@pytest.mark.parametrize("env", ENVS)
def test_cluster_kustomizations(env: str) -> None:
    docs = documents(GITOPS / "clusters" / env)
    flux = {doc["metadata"]["name"]: doc for doc in docs if doc["kind"] == "Kustomization"}
    assert set(flux) == {"infrastructure", "apps"}
    for doc in flux.values():
        path = ROOT / doc["spec"]["path"]
        assert (path / "kustomization.yaml").is_file(), doc["spec"]["path"]
        assert doc["spec"]["prune"] is True
        for dependency in doc["spec"].get("dependsOn", []):
            assert dependency["name"] in flux
    assert flux["apps"]["spec"]["path"] == f"./infra/gitops/apps/{env}"
    assert flux["apps"]["spec"]["dependsOn"] == [{"name": "infrastructure"}]
    assert flux["apps"]["spec"]["postBuild"]["substituteFrom"] == [
        {"kind": "ConfigMap", "name": "cluster-settings"}
    ]


def test_infrastructure_brings_the_cluster_manifests_and_the_chart_source() -> None:
    docs = documents(GITOPS / "infrastructure")
    kinds = {(doc["kind"], doc["metadata"]["name"]) for doc in docs}
    assert ("Namespace", "dronedelivery") in kinds
    assert ("NetworkPolicy", "default-deny-all") in kinds
    assert ("ResourceQuota", "dronedelivery") in kinds
    assert ("LimitRange", "dronedelivery") in kinds
    (source,) = [doc for doc in docs if doc["kind"] == "GitRepository"]
    assert source["metadata"] == {"name": "dronedelivery", "namespace": "flux-system"}
    assert "!/charts/" in source["spec"]["ignore"]


@pytest.mark.parametrize("env", ENVS)
def test_helm_releases(env: str) -> None:
    releases = overlay_releases(env)
    assert set(releases) == set(SERVICES)
    sources = {
        doc["metadata"]["name"]
        for doc in documents(GITOPS / "infrastructure")
        if doc["kind"] == "GitRepository"
    }
    for name, release in releases.items():
        assert release["apiVersion"] == "helm.toolkit.fluxcd.io/v2"
        chart = release["spec"]["chart"]["spec"]
        assert chart["chart"] == f"./charts/{name}"
        assert (ROOT / chart["chart"] / "Chart.yaml").is_file()
        assert chart["sourceRef"]["kind"] == "GitRepository"
        assert chart["sourceRef"]["name"] in sources
        assert chart["valuesFiles"] == [
            f"./charts/{name}/values.yaml",
            f"./charts/{name}/values-{env}.yaml",
        ]
        for values in chart["valuesFiles"]:
            assert (ROOT / values).is_file(), values
        assert release["spec"]["values"]["image"]["tag"]
        for dependency in release["spec"].get("dependsOn", []):
            assert dependency["name"] in releases


@pytest.mark.parametrize("env", ENVS)
def test_substituted_variables_are_defined_per_cluster(env: str) -> None:
    used: set[str] = set()
    for path in (GITOPS / "apps").rglob("*.yaml"):
        used |= set(VARIABLE.findall(path.read_text(encoding="utf-8")))
    assert used
    assert used <= set(cluster_settings(env))


@pytest.mark.parametrize("service", SERVICES)
@pytest.mark.parametrize("env", ENVS)
def test_release_values_render_the_chart(
    helm: Helm, tmp_path: Path, env: str, service: str
) -> None:
    """What Flux hands Helm (values files + substituted spec.values) passes the chart's schema."""
    release = overlay_releases(env)[service]
    settings = cluster_settings(env)
    values = substitute(release["spec"]["values"], settings)
    override = tmp_path / "release-values.yaml"
    override.write_text(yaml.safe_dump(values), encoding="utf-8")
    files = [helm.charts.parent / path for path in release["spec"]["chart"]["spec"]["valuesFiles"]]
    docs = parse_manifests(helm.template(service, [*files, override]).stdout)
    (account,) = [doc for doc in docs if doc["kind"] == "ServiceAccount"]
    client_id = settings[f"{service.upper()}_CLIENT_ID"]
    assert account["metadata"]["annotations"]["azure.workload.identity/client-id"] == client_id
    (deployment,) = [doc for doc in docs if doc["kind"] == "Deployment"]
    image = deployment["spec"]["template"]["spec"]["containers"][0]["image"]
    assert image.endswith(":" + str(values["image"]["tag"]))
    assert f"acrdronedelivery{env}.azurecr.io/" in image


KUBECTL = shutil.which("kubectl")


@pytest.mark.skipif(
    KUBECTL is None, reason="kubectl (kustomize) not installed: paths checked above"
)
@pytest.mark.parametrize(
    "directory",
    ["clusters/dev", "clusters/prod", "infrastructure", "apps/base", "apps/dev", "apps/prod"],
)
def test_kustomize_builds(directory: str) -> None:
    assert KUBECTL is not None
    result = subprocess.run(
        [KUBECTL, "kustomize", str(GITOPS / directory)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    built = parse_manifests(result.stdout)
    expected = documents(GITOPS / directory)
    assert len(built) == len(expected)
    if directory.startswith("apps/") and directory != "apps/base":
        env = directory.split("/")[1]
        releases = {doc["metadata"]["name"]: doc for doc in built}
        assert releases == overlay_releases(env)
