"""The policies bite: a compliant rendered chart, broken in one place in memory, is reported.

Each case takes the delivery (or workflow) chart rendered with values-prod.yaml, which passes every
policy (test_charts.py), applies one mutation and asserts the policy names the problem.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import kubernetes_validate
import pytest

from .conftest import KUBE_VERSION, Manifest
from .custom_resource_policy import custom_resource_problems
from .policy import manifest_problems, of_kind, values_secret_problems

Rendered = dict[tuple[str, str], list[Manifest]]
Mutation = Callable[[list[Manifest]], None]


def the(docs: list[Manifest], kind: str) -> Manifest:
    (found,) = of_kind(docs, kind)
    return found


def pod(docs: list[Manifest]) -> dict[str, Any]:
    spec: dict[str, Any] = the(docs, "Deployment")["spec"]["template"]["spec"]
    return spec


def main_container(docs: list[Manifest]) -> dict[str, Any]:
    found: dict[str, Any] = pod(docs)["containers"][0]
    return found


def security(docs: list[Manifest]) -> dict[str, Any]:
    found: dict[str, Any] = main_container(docs)["securityContext"]
    return found


def drop(kind: str) -> Mutation:
    def mutate(docs: list[Manifest]) -> None:
        docs.remove(the(docs, kind))

    return mutate


def add_env(name: str, value: str) -> Mutation:
    def mutate(docs: list[Manifest]) -> None:
        main_container(docs)["env"].append({"name": name, "value": value})

    return mutate


def downgrade_hpa(docs: list[Manifest]) -> None:
    the(docs, "HorizontalPodAutoscaler")["apiVersion"] = "autoscaling/v2beta2"


def add_secret(docs: list[Manifest]) -> None:
    docs.append(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "leak"},
            "stringData": {"k": "v"},
        }
    )


def add_ingress(docs: list[Manifest]) -> None:
    docs.append(
        {"apiVersion": "extensions/v1beta1", "kind": "Ingress", "metadata": {"name": "old"}}
    )


def open_ingress(docs: list[Manifest]) -> None:
    the(docs, "NetworkPolicy")["spec"]["ingress"].append({"ports": [{"port": 8080}]})


def remove_annotation(docs: list[Manifest]) -> None:
    the(docs, "ServiceAccount")["metadata"].pop("annotations")


def mutate_pod(path: str, value: Any) -> Mutation:
    """Set (or with value None remove) a dotted path under the pod spec."""

    def mutate(docs: list[Manifest]) -> None:
        target: Any = pod(docs)
        *parents, last = path.split(".")
        for part in parents:
            target = target[int(part)] if part.isdigit() else target[part]
        key: Any = int(last) if last.isdigit() else last
        if value is None:
            target.pop(key)
        else:
            target[key] = value

    return mutate


def set_replicas(docs: list[Manifest]) -> None:
    the(docs, "Deployment")["spec"]["replicas"] = 3


def drop_label(docs: list[Manifest]) -> None:
    the(docs, "Deployment")["spec"]["template"]["metadata"]["labels"].pop(
        "azure.workload.identity/use"
    )


CASES = [
    pytest.param(
        mutate_pod("containers.0.livenessProbe", None), "no livenessProbe", id="no-liveness"
    ),
    pytest.param(
        mutate_pod("containers.0.readinessProbe", None), "no readinessProbe", id="no-readiness"
    ),
    pytest.param(mutate_pod("containers.0.startupProbe", None), "no startupProbe", id="no-startup"),
    pytest.param(
        mutate_pod("containers.0.resources.limits", None), "resources.limits.cpu", id="no-limits"
    ),
    pytest.param(
        mutate_pod("containers.0.resources.requests", {"cpu": "1"}),
        "resources.requests.memory",
        id="no-memory-request",
    ),
    pytest.param(
        mutate_pod("containers.0.securityContext.readOnlyRootFilesystem", False),
        "readOnlyRootFilesystem",
        id="writable-root",
    ),
    pytest.param(
        mutate_pod("containers.0.securityContext.allowPrivilegeEscalation", True),
        "allowPrivilegeEscalation",
        id="privilege-escalation",
    ),
    pytest.param(
        mutate_pod("containers.0.securityContext.runAsNonRoot", None),
        "runAsNonRoot",
        id="container-may-be-root",
    ),
    pytest.param(
        mutate_pod("securityContext.runAsNonRoot", False),
        "pod: securityContext.runAsNonRoot",
        id="pod-may-be-root",
    ),
    pytest.param(
        mutate_pod("containers.0.securityContext.capabilities", {"drop": ["NET_RAW"]}),
        "drop lacks ALL",
        id="capabilities-kept",
    ),
    pytest.param(
        mutate_pod("containers.0.securityContext.seccompProfile", None),
        "seccompProfile",
        id="no-seccomp",
    ),
    pytest.param(
        mutate_pod("containers.0.securityContext.privileged", True), "privileged", id="privileged"
    ),
    pytest.param(mutate_pod("hostNetwork", True), "hostNetwork", id="host-network"),
    pytest.param(
        mutate_pod("volumes.0", {"name": "host", "hostPath": {"path": "/"}}),
        "hostPath",
        id="host-path",
    ),
    pytest.param(
        mutate_pod("serviceAccountName", "default"), "default ServiceAccount", id="default-sa"
    ),
    pytest.param(
        mutate_pod("automountServiceAccountToken", True),
        "automountServiceAccountToken",
        id="api-token",
    ),
    pytest.param(
        mutate_pod("topologySpreadConstraints", None), "topologySpreadConstraints", id="no-spread"
    ),
    pytest.param(
        mutate_pod("containers.0.image", "acr.example/delivery:latest"),
        "not pinned",
        id="latest-image",
    ),
    pytest.param(remove_annotation, "azure.workload.identity/client-id", id="no-client-id"),
    pytest.param(drop_label, "azure.workload.identity/use", id="no-identity-label"),
    pytest.param(drop("ServiceAccount"), "is not rendered", id="no-service-account"),
    pytest.param(drop("HorizontalPodAutoscaler"), "no HorizontalPodAutoscaler", id="no-hpa"),
    pytest.param(drop("PodDisruptionBudget"), "no PodDisruptionBudget", id="no-pdb"),
    pytest.param(drop("NetworkPolicy"), "no NetworkPolicy of its own", id="no-network-policy"),
    pytest.param(open_ingress, "admits every peer", id="ingress-from-anyone"),
    pytest.param(set_replicas, "sets replicas", id="replicas-with-hpa"),
    pytest.param(downgrade_hpa, "autoscaling/v2beta2", id="deprecated-hpa"),
    pytest.param(add_ingress, "removed API extensions/v1beta1", id="extensions-api"),
    pytest.param(add_secret, "Secret objects must not be rendered", id="secret-object"),
    pytest.param(
        add_env("DELIVERY_REDIS__PASSWORD", "hunter2"), "literal (secret) value", id="secret-env"
    ),
    pytest.param(
        add_env("DELIVERY_REDIS__URL", "rediss://user:hunter2@cache:6380/0"),
        "credential-like",
        id="password-in-url",
    ),
    pytest.param(
        add_env(
            "APPLICATIONINSIGHTS_CONNECTION_STRING", "InstrumentationKey=abc;IngestionEndpoint=x"
        ),
        "literal (secret) value",
        id="appinsights-literal",
    ),
]


@pytest.mark.parametrize(("mutation", "expected"), CASES)
def test_policy_reports_the_mutation(rendered: Rendered, mutation: Mutation, expected: str) -> None:
    docs = copy.deepcopy(rendered["delivery", "prod"])
    assert manifest_problems(docs, queue_consumer=False) == []
    mutation(docs)
    problems = manifest_problems(docs, queue_consumer=False)
    assert any(expected in problem for problem in problems), problems


def test_workflow_with_an_hpa_is_reported(rendered: Rendered) -> None:
    docs = copy.deepcopy(rendered["workflow", "prod"])
    hpa = copy.deepcopy(the(rendered["delivery", "prod"], "HorizontalPodAutoscaler"))
    hpa["spec"]["scaleTargetRef"]["name"] = "workflow"
    docs.append(hpa)
    assert any("KEDA owns scaling" in p for p in manifest_problems(docs, queue_consumer=True))


def test_workflow_without_scaled_object_is_reported(rendered: Rendered) -> None:
    docs = copy.deepcopy(rendered["workflow", "prod"])
    docs.remove(the(docs, "ScaledObject"))
    assert any(
        "needs a KEDA ScaledObject" in p for p in manifest_problems(docs, queue_consumer=True)
    )


CRD_CASES = [
    pytest.param(
        ("ScaledObject", "spec.triggers.0.metadata.namespace"),
        "without namespace",
        id="keda-no-namespace",
    ),
    pytest.param(("ScaledObject", "spec.fallback"), "no fallback", id="keda-no-fallback"),
    pytest.param(
        ("ScaledObject", "spec.cooldownPeriod"), "no cooldownPeriod", id="keda-no-cooldown"
    ),
    pytest.param(
        ("TriggerAuthentication", "spec.podIdentity.provider"),
        "azure-workload",
        id="keda-no-provider",
    ),
    pytest.param(
        ("SecretProviderClass", "spec.parameters.clientID"), "clientID", id="spc-no-client-id"
    ),
    pytest.param(
        ("SecretProviderClass", "spec.secretObjects"), "reads a key not synced", id="spc-not-synced"
    ),
]


@pytest.mark.parametrize(("target", "expected"), CRD_CASES)
def test_custom_resource_checks_bite(
    rendered: Rendered, target: tuple[str, str], expected: str
) -> None:
    kind, path = target
    docs = copy.deepcopy(rendered["workflow", "prod"])
    assert custom_resource_problems(docs) == []
    node: Any = the(docs, kind)
    *parents, last = path.split(".")
    for part in parents:
        node = node[int(part)] if part.isdigit() else node[part]
    node.pop(last)
    problems = custom_resource_problems(docs)
    assert any(expected in problem for problem in problems), problems


def test_route_to_a_missing_service_port_is_reported(rendered: Rendered) -> None:
    docs = copy.deepcopy(rendered["delivery", "prod"])
    the(docs, "HTTPRoute")["spec"]["rules"][0]["backendRefs"][0]["port"] = 8080
    assert any("not a rendered Service port" in p for p in custom_resource_problems(docs))


def test_route_policy_of_a_missing_route_is_reported(rendered: Rendered) -> None:
    docs = copy.deepcopy(rendered["delivery", "prod"])
    assert custom_resource_problems(docs) == []
    the(docs, "RoutePolicy")["spec"]["targetRef"]["name"] = "elsewhere"
    the(docs, "RoutePolicy")["spec"]["default"]["timeouts"]["routeTimeout"] = "forever"
    problems = custom_resource_problems(docs)
    assert any("is not a rendered HTTPRoute" in p for p in problems), problems
    assert any("is not a duration" in p for p in problems), problems


def test_kubernetes_schema_rejects_a_misspelt_field(rendered: Rendered) -> None:
    deployment = copy.deepcopy(the(rendered["delivery", "prod"], "Deployment"))
    kubernetes_validate.validate(deployment, KUBE_VERSION, strict=True)
    context = deployment["spec"]["template"]["spec"]["containers"][0]["securityContext"]
    context["readOnlyRootFilesystm"] = context.pop("readOnlyRootFilesystem")
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBE_VERSION, strict=True)


def test_kubernetes_schema_has_no_removed_apis(rendered: Rendered) -> None:
    hpa = copy.deepcopy(the(rendered["delivery", "prod"], "HorizontalPodAutoscaler"))
    hpa["apiVersion"] = "autoscaling/v2beta2"
    with pytest.raises(kubernetes_validate.SchemaNotFoundError):
        kubernetes_validate.validate(hpa, KUBE_VERSION, strict=True)


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        pytest.param({"env": {"X_REDIS__PASSWORD": "p"}}, "secret-looking key", id="password-key"),
        pytest.param({"auth": {"clientSecret": "s"}}, "secret-looking key", id="client-secret"),
        pytest.param(
            {"env": {"X_CONN": "Endpoint=sb://x/;SharedAccessKey=abc"}}, "credential-like", id="sas"
        ),
        pytest.param(
            {"db": {"connectionString": "mongodb://u:p@h"}},
            "secret-looking key",
            id="connection-string",
        ),
    ],
)
def test_values_secret_check_bites(values: dict[str, Any], expected: str) -> None:
    assert any(expected in p for p in values_secret_problems(values))


def test_values_secret_check_allows_references() -> None:
    values = {
        "keyVault": {"secrets": [{"objectName": "appinsights-connection-string", "env": "X"}]},
        "envFrom": [{"secretRef": {"name": "from-elsewhere"}}],
        "env": {"X_REDIS__USE_ENTRA_ID": "true"},
    }
    assert values_secret_problems(values) == []
