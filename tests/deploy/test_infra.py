"""Cluster manifests (infra/k8s): Pod Security labels, default deny, quota and limits that fit the
charts, and the Gateway the public routes attach to."""

from __future__ import annotations

import math
import re
from decimal import Decimal

import kubernetes_validate
import pytest

from .conftest import (
    ENVIRONMENTS,
    INFRA_K8S,
    KUBE_VERSION,
    NAMESPACE,
    SERVICES,
    Manifest,
    load_yaml_documents,
)
from .policy import CUSTOM_RESOURCES, api_version_problems, of_kind

Rendered = dict[tuple[str, str], list[Manifest]]

UNITS: dict[str, Decimal] = {
    "": Decimal(1),
    "m": Decimal("0.001"),
    "k": Decimal(1000),
    "M": Decimal(1000**2),
    "G": Decimal(1000**3),
    "Ki": Decimal(1024),
    "Mi": Decimal(1024**2),
    "Gi": Decimal(1024**3),
}


def quantity(value: str | int) -> Decimal:
    """A Kubernetes quantity as a number (cores, bytes)."""
    match = re.fullmatch(r"([0-9.]+)([A-Za-z]*)", str(value))
    assert match, value
    return Decimal(match[1]) * UNITS[match[2]]


def the(docs: list[Manifest], kind: str, name: str | None = None) -> Manifest:
    found = [d for d in of_kind(docs, kind) if name is None or d["metadata"]["name"] == name]
    assert len(found) == 1, (kind, name, found)
    return found[0]


def test_kustomization_lists_every_manifest() -> None:
    (kustomization,) = load_yaml_documents(INFRA_K8S / "kustomization.yaml")
    listed = set(kustomization["resources"])
    on_disk = {p.name for p in INFRA_K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert listed == on_disk


def test_core_manifests_match_the_kubernetes_schemas(infra_manifests: list[Manifest]) -> None:
    assert api_version_problems(infra_manifests) == []
    for doc in infra_manifests:
        if (doc["apiVersion"], doc["kind"]) not in CUSTOM_RESOURCES:
            kubernetes_validate.validate(doc, KUBE_VERSION, strict=True)


@pytest.mark.parametrize("name", [NAMESPACE, "dronedelivery-gateway"])
def test_namespaces_enforce_the_restricted_pod_security_standard(
    infra_manifests: list[Manifest], name: str
) -> None:
    labels = the(infra_manifests, "Namespace", name)["metadata"]["labels"]
    for mode in ("enforce", "audit", "warn"):
        assert labels[f"pod-security.kubernetes.io/{mode}"] == "restricted"
        assert labels[f"pod-security.kubernetes.io/{mode}-version"]


@pytest.mark.parametrize("name", [NAMESPACE, "dronedelivery-gateway"])
def test_default_deny_all(infra_manifests: list[Manifest], name: str) -> None:
    policies = [
        p for p in of_kind(infra_manifests, "NetworkPolicy") if p["metadata"]["namespace"] == name
    ]
    deny = [
        p
        for p in policies
        if p["spec"]["podSelector"] == {}
        and set(p["spec"]["policyTypes"]) == {"Ingress", "Egress"}
        and not p["spec"].get("ingress")
        and not p["spec"].get("egress")
    ]
    assert deny, f"no default-deny NetworkPolicy in {name}"


def max_replicas(docs: list[Manifest]) -> int:
    for hpa in of_kind(docs, "HorizontalPodAutoscaler"):
        return int(hpa["spec"]["maxReplicas"])
    for scaled in of_kind(docs, "ScaledObject"):
        return int(scaled["spec"]["maxReplicaCount"])
    return int(the(docs, "Deployment")["spec"]["replicas"])


def surge(deployment: Manifest, replicas: int) -> int:
    value = str(deployment["spec"]["strategy"]["rollingUpdate"]["maxSurge"])
    if value.endswith("%"):
        return math.ceil(replicas * int(value[:-1]) / 100)
    return int(value)


def test_quota_covers_prod_at_max_scale_during_a_rollout(
    rendered: Rendered, infra_manifests: list[Manifest]
) -> None:
    hard = the(infra_manifests, "ResourceQuota")["spec"]["hard"]
    needed = {"pods": Decimal(0), "requests.cpu": Decimal(0), "requests.memory": Decimal(0)}
    needed |= {"limits.cpu": Decimal(0), "limits.memory": Decimal(0)}
    for service in SERVICES:
        docs = rendered[service, "prod"]
        deployment = the(docs, "Deployment")
        replicas = max_replicas(docs)
        pods = replicas + surge(deployment, replicas)
        needed["pods"] += pods
        for container in deployment["spec"]["template"]["spec"]["containers"]:
            for section in ("requests", "limits"):
                for resource in ("cpu", "memory"):
                    needed[f"{section}.{resource}"] += pods * quantity(
                        container["resources"][section][resource]
                    )
    for key, amount in needed.items():
        assert quantity(hard[key]) >= amount, f"quota {key}={hard[key]} < {amount} needed"
    # And the comment's arithmetic is the one the quota was sized from.
    assert needed["pods"] == 72
    assert needed["requests.cpu"] == Decimal("15.5")


@pytest.mark.parametrize("env", list(ENVIRONMENTS))
def test_containers_fit_the_limit_range(
    rendered: Rendered, infra_manifests: list[Manifest], env: str
) -> None:
    (container_limits,) = [
        item
        for item in the(infra_manifests, "LimitRange")["spec"]["limits"]
        if item["type"] == "Container"
    ]
    for service in SERVICES:
        deployment = the(rendered[service, env], "Deployment")
        for container in deployment["spec"]["template"]["spec"]["containers"]:
            resources = container["resources"]
            for resource in ("cpu", "memory"):
                request = quantity(resources["requests"][resource])
                limit = quantity(resources["limits"][resource])
                assert quantity(container_limits["min"][resource]) <= request <= limit
                assert limit <= quantity(container_limits["max"][resource]), (service, resource)
                assert limit / request <= quantity(
                    container_limits["maxLimitRequestRatio"][resource]
                )


@pytest.mark.parametrize("service", ["ingestion", "delivery"])
def test_routes_attach_to_the_gateway(
    rendered: Rendered, infra_manifests: list[Manifest], service: str
) -> None:
    for env in ENVIRONMENTS:
        (route,) = of_kind(rendered[service, env], "HTTPRoute")
        for parent in route["spec"]["parentRefs"]:
            gateway = the(infra_manifests, "Gateway", parent["name"])
            assert gateway["metadata"]["namespace"] == parent["namespace"]
            (listener,) = [
                item
                for item in gateway["spec"]["listeners"]
                if item["name"] == parent["sectionName"]
            ]
            allowed = listener["allowedRoutes"]["namespaces"]
            assert allowed["from"] == "Selector"
            assert allowed["selector"]["matchLabels"] == {"kubernetes.io/metadata.name": NAMESPACE}
        policy = the(rendered[service, env], "NetworkPolicy")
        namespaces = {
            peer["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"]
            for rule in policy["spec"]["ingress"]
            for peer in rule["from"]
            if "namespaceSelector" in peer
        }
        assert namespaces == {route["spec"]["parentRefs"][0]["namespace"]}
