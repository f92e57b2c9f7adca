"""Every service chart, rendered with every values file, against the deployment policies.

Core resources are validated against the Kubernetes JSON schemas (kubernetes-validate, offline,
strict: unknown fields rejected). The custom resources (KEDA, Gateway API, Secrets Store CSI) have
no schema offline; their required fields and cross-references are checked by
custom_resource_policy.custom_resource_problems instead. The values files and their schemas are
tested in test_chart_values.py, the rendered settings against the services' own settings in
test_chart_settings.py.
"""

from __future__ import annotations

import ipaddress
import re

import kubernetes_validate
import pytest

from .conftest import (
    CHARTS,
    COMBO_IDS,
    COMBOS,
    ENVIRONMENTS,
    KUBE_VERSION,
    SERVICES,
    Helm,
    Rendered,
    container,
    deployment,
    env_of,
    values_files,
)
from .custom_resource_policy import custom_resource_problems
from .policy import CUSTOM_RESOURCES, manifest_problems, of_kind

QUEUE_CONSUMERS = {"workflow"}
# One replica works at a time (a lease in Redis): a fixed replica count, no HPA.
SINGLETONS = {"simulator"}
PUBLIC = {
    "ingestion": ["/api/deliveryrequests"],
    "delivery": ["/api/deliveries"],
    "webapp": ["/"],  # the catch-all: what the public API's routes do not take
}
PUBLIC_METHODS = {
    "ingestion": {"POST", "PATCH", "DELETE"},
    "delivery": {"GET", "POST"},
    "webapp": {"GET", "POST"},
}
# Seconds uvicorn gives open requests after SIGTERM (dronecommon.server.serve).
UVICORN_GRACEFUL_SHUTDOWN = 20
MARGIN = 5


@pytest.mark.parametrize(("service", "env"), COMBOS, ids=COMBO_IDS)
def test_lint_strict(helm: Helm, service: str, env: str) -> None:
    files = values_files(helm.chart(service), env)
    args = ["lint", "--strict", str(helm.chart(service)), "-n", "dronedelivery"]
    for path in files:
        args += ["-f", str(path)]
    result = helm.run(*args, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_library_chart_lints(helm: Helm) -> None:
    result = helm.run("lint", "--strict", str(helm.charts / "dronedelivery-lib"), check=False)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(("service", "env"), COMBOS, ids=COMBO_IDS)
def test_policies(rendered: Rendered, service: str, env: str) -> None:
    problems = manifest_problems(
        rendered[service, env],
        queue_consumer=service in QUEUE_CONSUMERS,
        singleton=service in SINGLETONS,
    )
    assert problems == []


@pytest.mark.parametrize(("service", "env"), COMBOS, ids=COMBO_IDS)
def test_kubernetes_schemas(rendered: Rendered, service: str, env: str) -> None:
    checked = 0
    for doc in rendered[service, env]:
        if (doc["apiVersion"], doc["kind"]) in CUSTOM_RESOURCES:
            continue
        try:
            kubernetes_validate.validate(doc, KUBE_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            path = ".".join(str(part) for part in exc.path)
            pytest.fail(f"{doc['kind']}/{doc['metadata']['name']}: {path}: {exc.message}")
        checked += 1
    assert checked >= 4  # ServiceAccount, Deployment, PDB, NetworkPolicy at least


@pytest.mark.parametrize(("service", "env"), COMBOS, ids=COMBO_IDS)
def test_custom_resources(rendered: Rendered, service: str, env: str) -> None:
    assert custom_resource_problems(rendered[service, env]) == []


@pytest.mark.parametrize(("service", "env"), COMBOS, ids=COMBO_IDS)
def test_scaling(rendered: Rendered, service: str, env: str) -> None:
    docs = rendered[service, env]
    kinds = [doc["kind"] for doc in docs]
    if service in QUEUE_CONSUMERS:
        assert kinds.count("ScaledObject") == 1
        assert kinds.count("TriggerAuthentication") == 1
        assert "HorizontalPodAutoscaler" not in kinds
    elif service in SINGLETONS:
        assert "HorizontalPodAutoscaler" not in kinds
        assert "ScaledObject" not in kinds
        assert deployment(docs)["spec"]["replicas"] == (1 if env == "dev" else 2)
    else:
        assert kinds.count("HorizontalPodAutoscaler") == 1
        assert "ScaledObject" not in kinds
    assert kinds.count("PodDisruptionBudget") == 1
    if service not in SINGLETONS:
        assert "replicas" not in deployment(docs)["spec"]


@pytest.mark.parametrize(("service", "env"), COMBOS, ids=COMBO_IDS)
def test_probes_and_graceful_termination(rendered: Rendered, service: str, env: str) -> None:
    docs = rendered[service, env]
    pod = deployment(docs)["spec"]["template"]["spec"]
    main = container(docs)
    assert main["ports"] == [{"name": "http", "containerPort": 8080, "protocol": "TCP"}]
    assert main["startupProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert main["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert main["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    environment = env_of(docs)
    prefix = service.upper()
    assert environment[f"{prefix}_PORT"] == "8080"
    assert environment[f"{prefix}_HOST"] == "0.0.0.0"
    pre_stop = main.get("lifecycle", {}).get("preStop", {}).get("sleep", {}).get("seconds", 0)
    grace = pod["terminationGracePeriodSeconds"]
    if service in QUEUE_CONSUMERS:
        drain = int(environment["WORKFLOW_SHUTDOWN_GRACE"])
        assert grace >= drain + MARGIN + pre_stop
    else:
        # Traffic keeps arriving until endpoints and the gateway drop the pod: sleep first.
        assert pre_stop >= 3
        assert grace >= pre_stop + UVICORN_GRACEFUL_SHUTDOWN + MARGIN


@pytest.mark.parametrize(("service", "env"), COMBOS, ids=COMBO_IDS)
def test_network_policy_peers(rendered: Rendered, service: str, env: str) -> None:
    (policy,) = of_kind(rendered[service, env], "NetworkPolicy")
    spec = policy["spec"]
    ingress_services = {
        peer["podSelector"]["matchLabels"]["app.kubernetes.io/name"]
        for rule in spec.get("ingress", [])
        for peer in rule["from"]
        if "podSelector" in peer and "namespaceSelector" not in peer
    }
    gateway_peers = [
        peer
        for rule in spec.get("ingress", [])
        for peer in rule["from"]
        if "namespaceSelector" in peer or "ipBlock" in peer
    ]
    egress_services = {
        peer["podSelector"]["matchLabels"]["app.kubernetes.io/name"]
        for rule in spec["egress"]
        for peer in rule["to"]
        if "podSelector" in peer and "namespaceSelector" not in peer
    }
    expected_in = {
        "ingestion": {"webapp"},
        "delivery": {"workflow", "simulator", "notifier", "webapp"},
        "package": {"workflow"},
        "dronescheduler": {"workflow", "simulator"},
        "workflow": {"webapp"},  # the queue view (/ops)
        "simulator": {"webapp"},  # the fleet (/ops)
        "notifier": {"webapp"},  # a delivery's notifications
    }
    assert ingress_services == expected_in.get(service, set())
    assert bool(gateway_peers) == (service in PUBLIC)
    if service == "workflow":
        assert egress_services == {"package", "dronescheduler", "delivery"}
    elif service == "simulator":
        assert egress_services == {"dronescheduler", "delivery"}
    elif service == "notifier":
        assert egress_services == {"delivery"}
    elif service == "webapp":
        assert egress_services == {"ingestion", "delivery", "workflow", "simulator", "notifier"}
    else:
        assert egress_services == set()
    dns = spec["egress"][0]
    assert dns["to"][0]["podSelector"]["matchLabels"] == {"k8s-app": "kube-dns"}
    assert sorted((p["protocol"], p["port"]) for p in dns["ports"]) == [("TCP", 53), ("UDP", 53)]
    azure_ports = {p["port"] for rule in spec["egress"][1:] for p in rule["ports"]} - {8080}
    needs = {
        "ingestion": {443, 5671, 6380, 10000},
        "delivery": {443, 5671, 6380, 10000},
        "package": {443, 10255, 10260},
        "dronescheduler": {443, 10255, 10260},
        "workflow": {443, 5671, 6380, 10000},
        "simulator": {443, 5671, 6380, 10000},
        "notifier": {443, 6380, 10000},
        "webapp": {443, 6380, 10000},
    }
    assert azure_ports == needs[service]


@pytest.mark.parametrize("service", sorted(PUBLIC))
@pytest.mark.parametrize("env", list(ENVIRONMENTS))
def test_public_services_are_routed(rendered: Rendered, service: str, env: str) -> None:
    (route,) = of_kind(rendered[service, env], "HTTPRoute")
    paths = sorted({m["path"]["value"] for rule in route["spec"]["rules"] for m in rule["matches"]})
    assert paths == PUBLIC[service]
    methods = {m.get("method") for rule in route["spec"]["rules"] for m in rule["matches"]}
    # Only the public API's methods (tests/deploy/test_gateway.py checks every route).
    assert methods == PUBLIC_METHODS[service]


@pytest.mark.parametrize("env", list(ENVIRONMENTS))
def test_the_tracking_streams_have_no_route_timeout(rendered: Rendered, env: str) -> None:
    """Application Gateway for Containers ends requests at its route timeout; the delivery
    service's Server-Sent Events streams stay open, so its route has none (a RoutePolicy)."""
    (route,) = of_kind(rendered["delivery", env], "HTTPRoute")
    (policy,) = of_kind(rendered["delivery", env], "RoutePolicy")
    assert policy["spec"]["targetRef"] == {
        "group": "gateway.networking.k8s.io",
        "kind": "HTTPRoute",
        "name": route["metadata"]["name"],
        "namespace": route["metadata"]["namespace"],
    }
    assert policy["spec"]["default"]["timeouts"]["routeTimeout"] == "0s"
    assert of_kind(rendered["ingestion", env], "RoutePolicy") == []
    environment = env_of(rendered["delivery", env])
    assert environment["DELIVERY_TELEMETRY_STREAM__TRANSPORT"] == "eventhubs"
    assert environment["DELIVERY_TELEMETRY_STREAM__CONSUMER_GROUP"] == "delivery"
    if env != "default":
        simulator = env_of(rendered["simulator", env])
        assert (
            environment["DELIVERY_TELEMETRY_STREAM__EVENTHUBS_NAMESPACE"]
            == simulator["SIMULATOR_TELEMETRY_STREAM__EVENTHUBS_NAMESPACE"]
        )


@pytest.mark.parametrize("service", [s for s in SERVICES if s not in PUBLIC])
def test_internal_services_are_not_routed(rendered: Rendered, service: str) -> None:
    for env in ENVIRONMENTS:
        assert of_kind(rendered[service, env], "HTTPRoute") == []


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_keda_reads_the_queue_the_workflow_consumes(rendered: Rendered, env: str) -> None:
    docs = rendered["workflow", env]
    (scaled,) = of_kind(docs, "ScaledObject")
    (trigger,) = scaled["spec"]["triggers"]
    environment = env_of(docs)
    assert trigger["type"] == "azure-servicebus"
    assert (
        trigger["metadata"]["queueName"]
        == environment["WORKFLOW_QUEUE__NAME"]
        == "deliveryrequests"
    )
    host = environment["WORKFLOW_QUEUE__SERVICEBUS_NAMESPACE"]
    assert f"{trigger['metadata']['namespace']}.servicebus.windows.net" == host
    ingestion = env_of(rendered["ingestion", env])
    assert ingestion["INGESTION_QUEUE__NAME"] == environment["WORKFLOW_QUEUE__NAME"]
    assert ingestion["INGESTION_QUEUE__SERVICEBUS_NAMESPACE"] == host
    (auth,) = of_kind(docs, "TriggerAuthentication")
    (account,) = of_kind(docs, "ServiceAccount")
    assert (
        auth["spec"]["podIdentity"]["identityId"]
        == account["metadata"]["annotations"]["azure.workload.identity/client-id"]
    )


@pytest.mark.parametrize("env", list(ENVIRONMENTS))
def test_workflow_reaches_the_services_by_their_service_names(rendered: Rendered, env: str) -> None:
    environment = env_of(rendered["workflow", env])
    for target in ("package", "dronescheduler", "delivery"):
        (service,) = of_kind(rendered[target, env], "Service")
        port = service["spec"]["ports"][0]["port"]
        assert (
            environment[f"WORKFLOW_{target.upper()}_URL"]
            == f"http://{target}.dronedelivery.svc:{port}"
        )


@pytest.mark.parametrize("env", ["dev", "prod"])
@pytest.mark.parametrize("service", SERVICES)
def test_secrets_come_from_key_vault(rendered: Rendered, service: str, env: str) -> None:
    docs = rendered[service, env]
    (spc,) = of_kind(docs, "SecretProviderClass")
    variable = next(
        v for v in container(docs)["env"] if v["name"] == "APPLICATIONINSIGHTS_CONNECTION_STRING"
    )
    assert (
        variable["valueFrom"]["secretKeyRef"]["name"]
        == spc["spec"]["secretObjects"][0]["secretName"]
    )
    assert (
        spc["spec"]["parameters"]["clientID"]
        == (
            of_kind(docs, "ServiceAccount")[0]["metadata"]["annotations"][
                "azure.workload.identity/client-id"
            ]
        )
    )


PRIVATE_RANGES = (
    "10.0.0.0/8",
    "172.16.0.0/12",
    "192.168.0.0/16",
    "100.64.0.0/10",
    "169.254.0.0/16",
)


def _bicep_param(name: str, environment: str) -> str:
    text = (CHARTS.parent / "infra" / "bicep" / f"main.{environment}.bicepparam").read_text()
    match = re.search(rf"^param {name} = '([^']+)'", text, re.MULTILINE)
    assert match is not None, f"{name} is not set in main.{environment}.bicepparam"
    return match.group(1)


@pytest.mark.parametrize("service", SERVICES)
def test_production_azure_egress_is_the_private_endpoints_and_the_public_internet_only(
    rendered: Rendered, service: str
) -> None:
    """In production the data plane is behind private endpoints (Bicep's snet-private-endpoints);
    what has none (Entra ID, Application Insights, Event Hubs) is public. No other private
    address — the VNet, the hub, peered or on-premises networks, link-local — is reachable on
    the Azure ports."""
    endpoints = ipaddress.ip_network(_bicep_param("privateEndpointsSubnetPrefix", "prod"))
    (policy,) = of_kind(rendered[service, "prod"], "NetworkPolicy")
    blocks = [
        peer["ipBlock"]
        for rule in policy["spec"]["egress"]
        for peer in rule["to"]
        if "ipBlock" in peer
    ]
    networks = {ipaddress.ip_network(block["cidr"]) for block in blocks}
    assert endpoints in networks
    for block in blocks:
        network = ipaddress.ip_network(block["cidr"])
        if network == endpoints:
            continue
        excepted = [ipaddress.ip_network(cidr) for cidr in block.get("except", [])]
        for private in map(ipaddress.ip_network, PRIVATE_RANGES):
            if network.overlaps(private):
                assert any(private.subnet_of(e) for e in excepted), (  # type: ignore[arg-type]
                    f"{service}: {network} reaches {private} on the Azure ports"
                )
