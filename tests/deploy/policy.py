"""Deployment policies over rendered Kubernetes manifests: pure functions returning problems.

Each function takes parsed manifests (dicts) and returns a list of human-readable problems, empty
when the manifests comply. The tests apply them to every chart rendered with every values file,
and prove each rule bites by mutating a compliant manifest in memory (test_policy_mutations.py).
The custom resources' rules are in custom_resource_policy.py.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping
from typing import Any

Manifest = dict[str, Any]

WORKLOAD_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob"}
# Built-in API groups: for these, only GA versions are allowed (no alpha/beta, and no extensions/*).
# Custom resources (keda.sh/v1alpha1 is KEDA's current API) are not judged by their version here.
BUILTIN_GROUPS = {
    "",
    "apps",
    "autoscaling",
    "batch",
    "policy",
    "networking.k8s.io",
    "rbac.authorization.k8s.io",
    "storage.k8s.io",
    "scheduling.k8s.io",
    "admissionregistration.k8s.io",
    "apiextensions.k8s.io",
    "coordination.k8s.io",
    "discovery.k8s.io",
    "node.k8s.io",
    "flowcontrol.apiserver.k8s.io",
    "certificates.k8s.io",
    "events.k8s.io",
}
REMOVED_GROUPS = {"extensions"}
# Custom resources the charts may render, with the API versions that are current.
CUSTOM_RESOURCES = {
    ("keda.sh/v1alpha1", "ScaledObject"),
    ("keda.sh/v1alpha1", "TriggerAuthentication"),
    ("gateway.networking.k8s.io/v1", "HTTPRoute"),
    ("gateway.networking.k8s.io/v1", "Gateway"),
    ("alb.networking.azure.io/v1", "RoutePolicy"),
    ("secrets-store.csi.x-k8s.io/v1", "SecretProviderClass"),
}
WORKLOAD_IDENTITY_ANNOTATION = "azure.workload.identity/client-id"
WORKLOAD_IDENTITY_LABEL = "azure.workload.identity/use"
UUID = re.compile(r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")
# Names whose literal value would be a secret (env names, values keys).
SECRET_NAME = re.compile(
    r"password|passwd|secret|connection_?string|access_?key|api_?key|sas_?token|private_?key",
    re.IGNORECASE,
)
# Values that look like credentials whatever their name.
SECRET_VALUE = re.compile(
    r"AccountKey=|SharedAccessKey=|SharedAccessSignature|InstrumentationKey=|Password=|"
    r"[a-z][a-z0-9+.-]*://[^/\s:@]+:[^/\s@]+@|-----BEGIN [A-Z ]*PRIVATE KEY-----",
    re.IGNORECASE,
)
# Volume types the "restricted" Pod Security Standard admits.
RESTRICTED_VOLUME_TYPES = {
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "persistentVolumeClaim",
    "projected",
    "secret",
}


def api_group(api_version: str) -> str:
    return api_version.split("/", 1)[0] if "/" in api_version else ""


def name_of(doc: Manifest) -> str:
    return f"{doc.get('kind')}/{doc.get('metadata', {}).get('name')}"


def of_kind(docs: Iterable[Manifest], kind: str) -> list[Manifest]:
    return [doc for doc in docs if doc.get("kind") == kind]


def pod_template(workload: Manifest) -> Manifest:
    spec = workload.get("spec", {})
    if workload.get("kind") == "CronJob":
        spec = spec.get("jobTemplate", {}).get("spec", {})
    template: Manifest = spec.get("template", {})
    return template


def containers(pod_spec: Manifest) -> list[Manifest]:
    return [*pod_spec.get("initContainers", []), *pod_spec.get("containers", [])]


# -- API versions -------------------------------------------------------------------------------


def api_version_problems(docs: Iterable[Manifest]) -> list[str]:
    """Deprecated or removed APIs (extensions/*, */v1beta1, autoscaling/v2beta2, ...)."""
    problems = []
    for doc in docs:
        version = str(doc.get("apiVersion", ""))
        group = api_group(version)
        if group in REMOVED_GROUPS:
            problems.append(f"{name_of(doc)}: removed API {version}")
        elif group in BUILTIN_GROUPS and re.search(r"v\d+(alpha|beta)\d*$", version):
            problems.append(f"{name_of(doc)}: deprecated or pre-release API {version}")
        elif group not in BUILTIN_GROUPS and (version, doc.get("kind")) not in CUSTOM_RESOURCES:
            problems.append(f"{name_of(doc)}: unexpected custom resource {version}")
    return problems


# -- Containers and pods ------------------------------------------------------------------------


def container_problems(container: Manifest) -> list[str]:
    """Probes, resources and the restricted security context of one container."""
    name = container.get("name", "?")
    problems = [
        f"container {name}: no {probe}"
        for probe in ("startupProbe", "livenessProbe", "readinessProbe")
        if not container.get(probe)
    ]
    resources = container.get("resources") or {}
    problems += [
        f"container {name}: no resources.{section}.{resource}"
        for section in ("requests", "limits")
        for resource in ("cpu", "memory")
        if not (resources.get(section) or {}).get(resource)
    ]
    security = container.get("securityContext") or {}
    if security.get("runAsNonRoot") is not True:
        problems.append(f"container {name}: securityContext.runAsNonRoot is not true")
    if security.get("readOnlyRootFilesystem") is not True:
        problems.append(f"container {name}: securityContext.readOnlyRootFilesystem is not true")
    if security.get("allowPrivilegeEscalation") is not False:
        problems.append(f"container {name}: securityContext.allowPrivilegeEscalation is not false")
    if security.get("privileged"):
        problems.append(f"container {name}: securityContext.privileged")
    drop = (security.get("capabilities") or {}).get("drop") or []
    if "ALL" not in drop:
        problems.append(f"container {name}: securityContext.capabilities.drop lacks ALL")
    if (security.get("capabilities") or {}).get("add"):
        problems.append(f"container {name}: securityContext.capabilities.add is not empty")
    if (security.get("seccompProfile") or {}).get("type") != "RuntimeDefault":
        problems.append(f"container {name}: securityContext.seccompProfile is not RuntimeDefault")
    if container.get("image", "").endswith(":latest") or ":" not in container.get("image", ""):
        problems.append(f"container {name}: image is not pinned ({container.get('image')})")
    problems += env_problems(container)
    return problems


def env_problems(container: Manifest) -> list[str]:
    """Secret-looking literal values in a container's environment."""
    name = container.get("name", "?")
    problems = []
    for var in container.get("env") or []:
        value = var.get("value")
        if value is None:
            continue
        if SECRET_NAME.search(var.get("name", "")) and str(value).strip():
            problems.append(f"container {name}: env {var['name']} has a literal (secret) value")
        elif SECRET_VALUE.search(str(value)):
            problems.append(f"container {name}: env {var['name']} holds a credential-like value")
    return problems


def pod_problems(template: Manifest) -> list[str]:
    """The pod-level restricted settings and the workload identity wiring."""
    spec = template.get("spec") or {}
    labels = (template.get("metadata") or {}).get("labels") or {}
    problems = []
    account = spec.get("serviceAccountName")
    if not account or account == "default":
        problems.append("pod: runs as the default ServiceAccount")
    if spec.get("automountServiceAccountToken") is not False:
        problems.append("pod: automountServiceAccountToken is not false")
    security = spec.get("securityContext") or {}
    if security.get("runAsNonRoot") is not True:
        problems.append("pod: securityContext.runAsNonRoot is not true")
    if (security.get("seccompProfile") or {}).get("type") != "RuntimeDefault":
        problems.append("pod: securityContext.seccompProfile is not RuntimeDefault")
    problems += [f"pod: {host}" for host in ("hostNetwork", "hostPID", "hostIPC") if spec.get(host)]
    for volume in spec.get("volumes") or []:
        kinds = set(volume) - {"name"}
        if not kinds <= RESTRICTED_VOLUME_TYPES:
            problems.append(f"pod: volume {volume.get('name')} of type {sorted(kinds)}")
    mounts = {
        m.get("mountPath") for c in spec.get("containers", []) for m in c.get("volumeMounts", [])
    }
    if "/tmp" not in mounts:  # noqa: S108 - the writable scratch directory is the point
        problems.append("pod: no writable /tmp (read-only root filesystem needs an emptyDir)")
    if labels.get(WORKLOAD_IDENTITY_LABEL) != "true":
        problems.append(f'pod: label {WORKLOAD_IDENTITY_LABEL}: "true" is missing')
    if not spec.get("topologySpreadConstraints"):
        problems.append("pod: no topologySpreadConstraints")
    else:
        keys = {c.get("topologyKey") for c in spec["topologySpreadConstraints"]}
        problems += [
            f"pod: no topology spread over {key}"
            for key in ("topology.kubernetes.io/zone", "kubernetes.io/hostname")
            if key not in keys
        ]
    for container in containers(spec):
        problems += container_problems(container)
    return problems


def selects(selector: Mapping[str, Any] | None, labels: Mapping[str, str]) -> bool:
    """Whether a matchLabels selector picks pods with these labels (an empty selector picks all)."""
    match = (selector or {}).get("matchLabels") or {}
    return all(labels.get(key) == value for key, value in match.items())


# -- A service's manifests as a whole -----------------------------------------------------------


def manifest_problems(
    docs: list[Manifest], *, queue_consumer: bool, singleton: bool = False
) -> list[str]:
    """Every policy over one service's rendered chart."""
    problems = api_version_problems(docs)
    for secret in of_kind(docs, "Secret"):
        problems.append(f"{name_of(secret)}: Secret objects must not be rendered (use Key Vault)")
    accounts = {sa["metadata"]["name"]: sa for sa in of_kind(docs, "ServiceAccount")}
    policies = of_kind(docs, "NetworkPolicy")
    workloads = [doc for doc in docs if doc.get("kind") in WORKLOAD_KINDS]
    if not workloads:
        problems.append("no workload rendered")
    for workload in workloads:
        template = pod_template(workload)
        problems += [f"{name_of(workload)}: {p}" for p in pod_problems(template)]
        account_name = (template.get("spec") or {}).get("serviceAccountName")
        account = accounts.get(account_name or "")
        if account is None:
            problems.append(
                f"{name_of(workload)}: its ServiceAccount {account_name} is not rendered"
            )
        else:
            client_id = (account.get("metadata", {}).get("annotations") or {}).get(
                WORKLOAD_IDENTITY_ANNOTATION, ""
            )
            if not UUID.match(client_id):
                problems.append(f"{name_of(account)}: no {WORKLOAD_IDENTITY_ANNOTATION} client id")
        labels = (template.get("metadata") or {}).get("labels") or {}
        own = [
            p
            for p in policies
            if selects(p.get("spec", {}).get("podSelector"), labels)
            and (p.get("spec", {}).get("podSelector") or {}).get("matchLabels")
        ]
        if not own:
            problems.append(f"{name_of(workload)}: no NetworkPolicy of its own selects its pods")
        for policy in own:
            problems += network_policy_problems(policy)
        problems += scaling_problems(
            workload, docs, queue_consumer=queue_consumer, singleton=singleton
        )
    return problems


def scaling_problems(
    workload: Manifest, docs: list[Manifest], *, queue_consumer: bool, singleton: bool = False
) -> list[str]:
    """A queue consumer is scaled by KEDA (no HPA); an API has an HPA, unless it is a singleton
    (one replica works at a time, by a lease: a fixed count, never autoscaled); every workload has
    a PDB."""
    name = workload["metadata"]["name"]
    hpas = [
        h
        for h in of_kind(docs, "HorizontalPodAutoscaler")
        if h["spec"]["scaleTargetRef"]["name"] == name
    ]
    scaled = [
        s for s in of_kind(docs, "ScaledObject") if s["spec"]["scaleTargetRef"]["name"] == name
    ]
    labels = (pod_template(workload).get("metadata") or {}).get("labels") or {}
    pdbs = [
        p
        for p in of_kind(docs, "PodDisruptionBudget")
        if selects(p["spec"].get("selector"), labels)
    ]
    problems = []
    if singleton:
        if hpas or scaled:
            problems.append(f"{name_of(workload)}: a singleton must not be autoscaled")
    elif queue_consumer:
        if not scaled:
            problems.append(f"{name_of(workload)}: a queue consumer needs a KEDA ScaledObject")
        if hpas:
            problems.append(f"{name_of(workload)}: KEDA owns scaling, but an HPA is rendered too")
    else:
        if not hpas:
            problems.append(f"{name_of(workload)}: no HorizontalPodAutoscaler")
        if scaled:
            problems.append(f"{name_of(workload)}: unexpected ScaledObject")
    for hpa in hpas:
        if hpa.get("apiVersion") != "autoscaling/v2":
            problems.append(f"{name_of(hpa)}: not autoscaling/v2")
        if (
            not (hpa["spec"].get("behavior") or {})
            .get("scaleDown", {})
            .get("stabilizationWindowSeconds")
        ):
            problems.append(f"{name_of(hpa)}: no scale-down stabilization window")
    if not pdbs:
        problems.append(f"{name_of(workload)}: no PodDisruptionBudget")
    if (hpas or scaled) and "replicas" in workload.get("spec", {}):
        problems.append(f"{name_of(workload)}: sets replicas although an autoscaler owns them")
    return problems


def network_policy_problems(policy: Manifest) -> list[str]:
    """Rules that would open more than intended: empty peer lists, an except outside its CIDR."""
    spec = policy.get("spec") or {}
    problems = []
    if set(spec.get("policyTypes") or []) != {"Ingress", "Egress"}:
        problems.append(f"{name_of(policy)}: policyTypes must be Ingress and Egress")
    for direction, peers_key in (("ingress", "from"), ("egress", "to")):
        for index, rule in enumerate(spec.get(direction) or []):
            if not rule.get(peers_key):
                problems.append(f"{name_of(policy)}: {direction}[{index}] admits every peer")
            if not rule.get("ports"):
                problems.append(f"{name_of(policy)}: {direction}[{index}] admits every port")
            for peer in rule.get(peers_key) or []:
                block = peer.get("ipBlock")
                if not block:
                    continue
                network = ipaddress.IPv4Network(block["cidr"])
                problems += [
                    f"{name_of(policy)}: except {excluded} outside {network}"
                    for excluded in block.get("except") or []
                    if not ipaddress.IPv4Network(excluded).subnet_of(network)
                ]
    return problems


# -- Values files -------------------------------------------------------------------------------


def values_secret_problems(values: Any, path: str = "") -> list[str]:
    """Secret-looking literal values anywhere in a values tree."""
    problems = []
    if isinstance(values, Mapping):
        for key, value in values.items():
            where = f"{path}.{key}" if path else str(key)
            if (
                SECRET_NAME.search(str(key))
                and isinstance(value, str | int | float)
                and str(value).strip()
            ):
                problems.append(f"{where}: literal value under a secret-looking key")
            problems += values_secret_problems(value, where)
    elif isinstance(values, list):
        for index, item in enumerate(values):
            problems += values_secret_problems(item, f"{path}[{index}]")
    elif isinstance(values, str) and SECRET_VALUE.search(values):
        problems.append(f"{path}: credential-like value")
    return problems
