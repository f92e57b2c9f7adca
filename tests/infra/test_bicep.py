"""Structural tests of infra/bicep (no Bicep compiler and no Azure here: see infra/README.md,
"What is validated").

They read the Bicep source with tests/infra/bicep.py and check: that every file parses (balanced,
terminated, known statements); module wiring (paths, params, outputs); API versions against a
pinned allowlist; unused params/vars; role assignments (guid names, known roles); keyless access
and no secrets in outputs or parameter files; the security settings of each service; the network
plan; and that names, identities and subjects line up with the Helm charts and the Flux layout.
"""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from .bicep import (
    BICEP_DIR,
    ROOT,
    BicepFile,
    BicepSyntaxError,
    Call,
    Expr,
    For,
    Interp,
    body_of,
    dig,
    interpolate,
    is_expr,
    load,
    parse,
)
from .checks import (
    PRIVATE_LINK_ZONES,
    api_version_problems,
    bicep_files,
    module_problems,
    param_file_problems,
    param_files,
    role_assignment_problems,
    secret_problems,
    unused_symbol_problems,
)

CHARTS = ROOT / "charts"
GITOPS = ROOT / "infra" / "gitops"
SERVICES = (
    "ingestion",
    "delivery",
    "package",
    "dronescheduler",
    "workflow",
    "simulator",
    "notifier",
    "webapp",
)
ENVIRONMENTS = ("dev", "prod")
MODULES = BICEP_DIR / "modules"

pytestmark = pytest.mark.timeout(30)


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


# ---------------------------------------------------------------------------------------------
# Every file: syntax, wiring, versions, hygiene
# ---------------------------------------------------------------------------------------------

ALL_FILES = [*bicep_files(), *param_files()]


def test_the_expected_files_exist() -> None:
    names = {rel(p) for p in ALL_FILES}
    assert "infra/bicep/main.bicep" in names
    assert {"infra/bicep/main.dev.bicepparam", "infra/bicep/main.prod.bicepparam"} <= names
    assert len(bicep_files()) >= 10


@pytest.mark.parametrize("path", ALL_FILES, ids=rel)
def test_file_parses(path: Path) -> None:
    file = load(path)
    assert file.declarations, f"{rel(path)} declares nothing"
    if path.suffix == ".bicep":
        assert path.read_text(encoding="utf-8").endswith("\n")


@pytest.mark.parametrize("path", bicep_files(), ids=rel)
def test_modules_are_wired(path: Path) -> None:
    assert module_problems(load(path)) == []


@pytest.mark.parametrize("path", bicep_files(), ids=rel)
def test_api_versions_are_pinned_and_stable(path: Path) -> None:
    assert api_version_problems(load(path)) == []


@pytest.mark.parametrize("path", bicep_files(), ids=rel)
def test_every_param_and_var_is_used(path: Path) -> None:
    assert unused_symbol_problems(load(path)) == []


@pytest.mark.parametrize("path", bicep_files(), ids=rel)
def test_role_assignments(path: Path) -> None:
    assert role_assignment_problems(load(path)) == []


@pytest.mark.parametrize("path", bicep_files(), ids=rel)
def test_no_keys_and_no_secrets_in_outputs(path: Path) -> None:
    assert secret_problems(load(path)) == []


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_param_file_sets_main_and_holds_no_secrets(main: BicepFile, environment: str) -> None:
    assert param_file_problems(param_file(environment), main) == []


def test_main_is_deployed_at_subscription_scope(main: BicepFile) -> None:
    assert main.get("targetScope", "targetScope").value == "subscription"
    environment = main.params["environment"]
    allowed = environment.decorator("allowed")
    assert allowed is not None
    assert allowed.args[0] == ["dev", "prod"]


# ---------------------------------------------------------------------------------------------
# AKS
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cluster() -> dict[str, Any]:
    return body_of(module("aks").resource("Microsoft.ContainerService/managedClusters"))


def test_aks_identity_and_access(cluster: dict[str, Any]) -> None:
    props = cluster["properties"]
    assert dig(props, "oidcIssuerProfile", "enabled") is True
    assert dig(props, "securityProfile", "workloadIdentity", "enabled") is True
    assert dig(props, "aadProfile", "managed") is True
    assert dig(props, "aadProfile", "enableAzureRBAC") is True
    assert props["disableLocalAccounts"] is True
    assert props["enableRBAC"] is True
    assert dig(cluster, "identity", "type") == "UserAssigned"


def test_aks_addons_the_charts_need(cluster: dict[str, Any]) -> None:
    props = cluster["properties"]
    assert dig(props, "workloadAutoScalerProfile", "keda", "enabled") is True
    csi = dig(props, "addonProfiles", "azureKeyvaultSecretsProvider")
    assert csi["enabled"] is True
    assert csi["config"]["enableSecretRotation"] == "true"


def test_aks_network_is_cni_overlay_with_cilium(cluster: dict[str, Any]) -> None:
    net = cluster["properties"]["networkProfile"]
    assert net["networkPlugin"] == "azure"
    assert net["networkPluginMode"] == "overlay"
    assert net["networkDataplane"] == "cilium"
    # The charts' NetworkPolicies need an enforcing engine.
    assert net["networkPolicy"] == "cilium"


def test_aks_pools_autoscale_across_zones(cluster: dict[str, Any]) -> None:
    aks = module("aks")
    common = literal(aks.variables["commonPoolProfile"].value, "commonPoolProfile")
    assert common["enableAutoScaling"] is True
    assert is_expr(
        common["availabilityZones"], "empty(availabilityZones) ? null : availabilityZones"
    )
    assert resolved_param(aks, "availabilityZones") == ["1", "2", "3"]
    pools = []
    for entry in cluster["properties"]["agentPoolProfiles"]:
        assert isinstance(entry, Call)
        assert entry.name == "union"
        assert is_expr(entry.args[0], "commonPoolProfile")
        pools.append({**common, **entry.args[1]})
    modes = {p["name"]: p["mode"] for p in pools}
    assert modes == {"system": "System", "user": "User"}
    system = next(p for p in pools if p["mode"] == "System")
    assert system["nodeTaints"] == ["CriticalAddonsOnly=true:NoSchedule"]
    user = next(p for p in pools if p["mode"] == "User")
    assert "nodeTaints" not in user
    for pool in pools:
        assert {"minCount", "maxCount"} <= pool.keys()
    scaler = cluster["properties"]["autoScalerProfile"]
    assert scaler["expander"] == "least-waste"
    # The charts mount an emptyDir on /tmp: such nodes must stay eligible for scale-down.
    assert scaler["skip-nodes-with-local-storage"] == "false"


def test_aks_upgrades_automatically(cluster: dict[str, Any]) -> None:
    aks = module("aks")
    profile = cluster["properties"]["autoUpgradeProfile"]
    assert is_expr(profile["upgradeChannel"], "upgradeChannel")
    assert resolved_param(aks, "upgradeChannel") == "stable"
    assert resolved_param(aks, "nodeOsUpgradeChannel") == "NodeImage"
    windows = {
        d.name
        for d in aks.resources(
            "Microsoft.ContainerService/managedClusters/maintenanceConfigurations"
        )
    }
    assert windows == {"autoUpgradeWindow", "nodeOsUpgradeWindow"}


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_pool_os_disks_fit_the_vm_cache(main: BicepFile, environment: str) -> None:
    """Ephemeral OS disks live on the VM's temp disk: the size must fit (D2ds_v5 75 GiB, D4ds_v5
    150 GiB, D8ds_v5 300 GiB)."""
    temp_disk_gib = {"Standard_D2ds_v5": 75, "Standard_D4ds_v5": 150, "Standard_D8ds_v5": 300}
    values = param_values(main, environment)
    for pool in ("systemPool", "userPool"):
        spec = values[pool]
        assert spec["vmSize"] in temp_disk_gib, (
            f"{pool}: add {spec['vmSize']}'s temp disk size here"
        )
        assert spec["osDiskSizeGB"] <= temp_disk_gib[spec["vmSize"]]
        assert 1 <= spec["minCount"] <= spec["maxCount"]


# ---------------------------------------------------------------------------------------------
# Data services
# ---------------------------------------------------------------------------------------------


def test_service_bus_is_keyless_with_a_safe_queue() -> None:
    sb = module("servicebus")
    namespace = body_of(sb.resource("Microsoft.ServiceBus/namespaces"))
    assert dig(namespace, "properties", "disableLocalAuth") is True
    assert dig(namespace, "properties", "minimumTlsVersion") == "1.2"
    queue = body_of(sb.resource("Microsoft.ServiceBus/namespaces/queues"))["properties"]
    assert queue["requiresDuplicateDetection"] is True
    assert queue["deadLetteringOnMessageExpiration"] is True
    assert is_expr(queue["duplicateDetectionHistoryTimeWindow"], "duplicateDetectionWindow")
    assert re.fullmatch(r"PT\d+M", resolved_param(sb, "duplicateDetectionWindow"))
    assert is_expr(queue["maxDeliveryCount"], "maxDeliveryCount")
    assert is_expr(queue["lockDuration"], "lockDuration")
    # The workflow's defaults for the Redis transport (services/workflow settings) mean the same.
    assert resolved_param(sb, "maxDeliveryCount") == 10
    assert resolved_param(sb, "lockDuration") == "PT30S"


def test_queue_name_matches_the_charts(main: BicepFile) -> None:
    params = body_of(main.get("module", "serviceBus"))["params"]
    assert params["queueName"] == "deliveryrequests"
    for service in ("ingestion", "workflow"):
        values = chart_values(service, "prod")
        assert values["env"][f"{service.upper()}_QUEUE__NAME"] == "deliveryrequests"
    assert chart_values("workflow", "prod")["keda"]["queueName"] == "deliveryrequests"


def test_redis_is_managed_redis_with_entra_only() -> None:
    redis = module("redis")
    assert redis.resource("Microsoft.Cache/redisEnterprise").name == "cluster"
    database = body_of(redis.resource("Microsoft.Cache/redisEnterprise/databases"))
    assert database["name"] == "default"
    props = database["properties"]
    assert props["accessKeysAuthentication"] == "Disabled"
    assert props["clientProtocol"] == "Encrypted"
    assert props["port"] == 10000
    # The services use a plain Redis client: one endpoint, no cluster redirects.
    assert props["clusteringPolicy"] == "EnterpriseCluster"
    assert props["evictionPolicy"] == "NoEviction"
    assignment = redis.resource("Microsoft.Cache/redisEnterprise/databases/accessPolicyAssignments")
    assert assignment.decorator("batchSize") is not None
    assert body_of(assignment)["properties"]["accessPolicyName"] == "default"
    assert is_expr(dig(body_of(assignment), "properties", "user", "objectId"), "user.principalId")


def test_key_vault_is_rbac_with_purge_protection() -> None:
    kv = module("keyvault")
    props = body_of(kv.resource("Microsoft.KeyVault/vaults"))["properties"]
    assert props["enableRbacAuthorization"] is True
    assert props["enablePurgeProtection"] is True
    assert props["enableSoftDelete"] is True
    secret = body_of(kv.resource("Microsoft.KeyVault/vaults/secrets"))
    assert is_expr(secret["properties"]["value"], "appInsights.properties.ConnectionString")
    # The readers are scoped to the secret, not to the vault.
    readers = body_of(kv.resource("Microsoft.Authorization/roleAssignments"))
    assert is_expr(readers["scope"], "appInsightsSecret")


def test_app_insights_secret_name_matches_the_charts(main: BicepFile) -> None:
    name = main.variables["appInsightsSecretName"].value
    for service in SERVICES:
        for environment in ENVIRONMENTS:
            values = chart_values(service, environment)
            assert values["keyVault"]["enabled"] is True
            objects = {s["objectName"] for s in values["keyVault"]["secrets"]}
            assert name in objects, (service, environment)


def test_acr_has_no_admin_user_and_kubelet_pulls() -> None:
    acr = module("acr")
    props = body_of(acr.resource("Microsoft.ContainerRegistry/registries"))["properties"]
    assert props["adminUserEnabled"] is False
    assert props["anonymousPullEnabled"] is False
    pulls = [
        d
        for d in acr.resources("Microsoft.Authorization/roleAssignments")
        if d.name == "kubeletPull"
    ]
    assert len(pulls) == 1
    assert is_expr(body_of(pulls[0])["properties"]["principalId"], "kubeletObjectId")


def test_mongo_is_vcore_with_entra_users() -> None:
    mongo = module("cosmos-mongo")
    cluster = body_of(mongo.resource("Microsoft.DocumentDB/mongoClusters"))["properties"]
    assert is_expr(
        cluster["authConfig"]["allowedModes"],
        "entraIdOnly ? ['MicrosoftEntraID'] : ['NativeAuth', 'MicrosoftEntraID']",
    )
    assert mongo.params["administratorPassword"].decorator("secure") is not None
    users = body_of(mongo.resource("Microsoft.DocumentDB/mongoClusters/users"))
    assert dig(users, "properties", "identityProvider", "type") == "MicrosoftEntraID"
    assert is_expr(users["name"], "user.principalId")


def test_mongo_url_matches_the_charts(main: BicepFile) -> None:
    mongo = module("cosmos-mongo")
    url = mongo.outputs["url"].value
    assert isinstance(url, Interp)
    host = mongo.variables["host"].value
    assert isinstance(host, Interp)
    for environment in ENVIRONMENTS:
        name = names(main, environment)["mongo"]
        expected = interpolate(url, {"host": interpolate(host, {"cluster": {"name": name}})})
        for service in ("package", "dronescheduler"):
            env = chart_values(service, environment)["env"]
            assert env[f"{service.upper()}_MONGO__URL"] == expected
            assert env[f"{service.upper()}_MONGO__USE_OIDC"] == "true"


# ---------------------------------------------------------------------------------------------
# Identities, federated credentials and who may do what
# ---------------------------------------------------------------------------------------------


def workloads(main: BicepFile) -> list[dict[str, Any]]:
    value = literal(main.variables["workloads"].value, "workloads")
    assert isinstance(value, list)
    return value


def chart_service_account(service: str) -> tuple[str, str]:
    """(namespace, ServiceAccount name) the chart renders for the service in AKS."""
    template = (CHARTS / "dronedelivery-lib" / "templates" / "_serviceaccount.tpl").read_text(
        encoding="utf-8"
    )
    assert 'name: {{ include "dronedelivery-lib.name" . }}' in template
    helpers = (CHARTS / "dronedelivery-lib" / "templates" / "_helpers.tpl").read_text(
        encoding="utf-8"
    )
    assert re.search(r'define "dronedelivery-lib\.name" -}}\s*{{- \.Chart\.Name', helpers)
    chart = yaml_file(CHARTS / service / "Chart.yaml")
    release = yaml_file(GITOPS / "apps" / "base" / f"{service}.yaml")
    assert "targetNamespace" not in release["spec"]
    return release["metadata"]["namespace"], chart["name"]


def test_one_identity_per_service_with_its_service_account(main: BicepFile) -> None:
    assert [w["name"] for w in workloads(main)] == list(SERVICES)
    loop = main.variables["workloadIdentities"].value
    assert isinstance(loop, For)
    subjects = loop.body["subjects"]
    assert isinstance(subjects, Call)
    assert subjects.name == "concat"
    template = subjects.args[0][0]
    namespace_default = main.params["appNamespace"].value
    for environment in ENVIRONMENTS:
        namespace = param_values(main, environment)["appNamespace"]
        assert namespace == namespace_default
        for w in workloads(main):
            subject = interpolate(template, {"appNamespace": namespace, "w": w})
            chart_namespace, service_account = chart_service_account(w["name"])
            assert subject == f"system:serviceaccount:{chart_namespace}:{service_account}"
            resource_name = interpolate(
                loop.body["resourceName"], {"w": w, "environment": environment}
            )
            # charts/README.md creates the credentials with az for identities named like this.
            assert resource_name == f"id-{w['name']}-{environment}"


def test_federated_credentials_trust_the_cluster_issuer() -> None:
    identities = module("identities")
    fic = identities.resource(
        "Microsoft.ManagedIdentity/userAssignedIdentities/federatedIdentityCredentials"
    )
    assert fic.decorator("batchSize") is not None
    props = body_of(fic)["properties"]
    assert is_expr(props["issuer"], "oidcIssuerUrl")
    assert is_expr(props["subject"], "credential.subject")
    assert props["audiences"] == [Expr("tokenExchangeAudience")]
    assert identities.variables["tokenExchangeAudience"].value == "api://AzureADTokenExchange"


def test_keda_and_alb_controller_subjects(main: BicepFile) -> None:
    keda = main.variables["kedaSubject"].value
    assert keda == "system:serviceaccount:kube-system:keda-operator"
    assert keda in (CHARTS / "README.md").read_text(encoding="utf-8")
    assert (
        main.variables["albControllerSubject"].value
        == "system:serviceaccount:azure-alb-system:alb-controller-sa"
    )


def test_keda_identity_matches_gitops(main: BicepFile) -> None:
    """With a dedicated KEDA identity the workflow's HelmRelease must point KEDA at it."""
    workflow = yaml_file(GITOPS / "apps" / "base" / "workflow.yaml")
    identity_id = workflow["spec"].get("values", {}).get("keda", {}).get("identityId")
    for environment in ENVIRONMENTS:
        dedicated = param_values(main, environment)["dedicatedKedaIdentity"]
        settings = yaml_file(GITOPS / "clusters" / environment / "cluster-settings.yaml")["data"]
        if not dedicated:
            assert identity_id in (None, "", "${WORKFLOW_CLIENT_ID}")
        elif identity_id is None:
            pytest.skip(
                "dedicatedKedaIdentity = true but infra/gitops does not pass it yet: add "
                'keda.identityId: "${KEDA_CLIENT_ID}" to apps/base/workflow.yaml and '
                "KEDA_CLIENT_ID to clusters/<env>/cluster-settings.yaml (infra/README.md)"
            )
        else:
            assert identity_id == "${KEDA_CLIENT_ID}"
            assert "KEDA_CLIENT_ID" in settings


def test_data_access_follows_what_each_chart_uses(main: BicepFile) -> None:
    """Redis, MongoDB and queue grants exactly for the services whose charts configure them."""
    for w in workloads(main):
        service = w["name"]
        env = chart_values(service, "prod")["env"]
        prefix = service.upper()
        assert w["redis"] == (f"{prefix}_REDIS__URL" in env), service
        if w["redis"]:
            assert env[f"{prefix}_REDIS__USE_ENTRA_ID"] == "true"
        assert w["mongo"] == (f"{prefix}_MONGO__URL" in env), service
        uses_queue = f"{prefix}_QUEUE__SERVICEBUS_NAMESPACE" in env
        assert (w["queueSend"] or w["queueReceive"]) == uses_queue, service
        assert w["keyVault"] == chart_values(service, "prod")["keyVault"]["enabled"]
        sends = env.get(f"{prefix}_EMAIL__TRANSPORT") == "acs"
        assert w["communication"] == sends, service
    by_name = {w["name"]: w for w in workloads(main)}
    assert by_name["ingestion"]["queueSend"]
    assert not by_name["ingestion"]["queueReceive"]
    assert by_name["workflow"]["queueReceive"]


def test_role_grants_are_scoped_to_the_resource() -> None:
    """Queue roles on the queue, secret reader on the secret, AcrPull on the registry."""
    scopes = {
        ("servicebus", "queueRoles"): "queue",
        ("keyvault", "secretReaders"): "appInsightsSecret",
        ("acr", "kubeletPull"): "registry",
        ("aks", "controlPlaneSubnetRole"): "nodeSubnet",
        ("subnet-role", "assignment"): "subnet",
        ("communication", "senders"): "communication",
    }
    for (name, symbol), scope in scopes.items():
        decl = module(name).get("resource", symbol)
        assert is_expr(body_of(decl)["scope"], scope), (name, symbol)


def test_main_passes_least_privilege_principals(main: BicepFile) -> None:
    sb = body_of(main.get("module", "serviceBus"))["params"]
    assert sb["senderPrincipalIds"].args[0] == Call(
        "filter", (Expr("workloads"), Expr("w => w.queueSend"))
    )
    assert sb["receiverPrincipalIds"].args[0] == Call(
        "filter", (Expr("workloads"), Expr("w => w.queueReceive"))
    )
    assert sb["queueOwnerPrincipalIds"] == [Expr("identityByName[kedaIdentityName].principalId")]
    redis = body_of(main.get("module", "redis"))["params"]
    assert redis["dataUsers"].args[0] == Call("filter", (Expr("workloads"), Expr("w => w.redis")))
    mongo = body_of(main.get("module", "mongo"))["params"]
    assert mongo["servicePrincipals"].args[0] == Call(
        "filter", (Expr("workloads"), Expr("w => w.mongo"))
    )
    acs = body_of(main.get("module", "communication"))["params"]
    assert acs["senderPrincipalIds"].args[0] == Call(
        "filter", (Expr("workloads"), Expr("w => w.communication"))
    )
    kv = body_of(main.get("module", "keyVault"))["params"]
    assert kv["secretReaderPrincipalIds"].args[0] == Call(
        "filter", (Expr("workloads"), Expr("w => w.keyVault"))
    )


# ---------------------------------------------------------------------------------------------
# Names, network and outputs against the charts and Flux
# ---------------------------------------------------------------------------------------------


def names(main: BicepFile, environment: str) -> dict[str, str]:
    values = param_values(main, environment)
    raw = literal(main.variables["names"].value, "names")
    scope = {"namePrefix": values["namePrefix"], "environment": values["environment"]}
    return {key: interpolate(value, scope) for key, value in raw.items()}


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_resource_names_match_the_charts(main: BicepFile, environment: str) -> None:
    n = names(main, environment)
    values = param_values(main, environment)
    assert values["environment"] == environment
    location = values["location"]
    redis = module("redis")
    redis_url = interpolate(
        redis.outputs["url"].value,
        {
            "cluster": {"properties": {"hostName": f"{n['redis']}.{location}.redis.azure.net"}},
            "database": {"properties": {"port": 10000}},
        },
    )
    for service in SERVICES:
        chart = chart_values(service, environment)
        prefix = service.upper()
        assert chart["image"]["registry"] == f"{n['acr']}.azurecr.io", service
        assert chart["keyVault"]["name"] == n["keyVault"], service
        env = chart["env"]
        if f"{prefix}_QUEUE__SERVICEBUS_NAMESPACE" in env:
            assert (
                env[f"{prefix}_QUEUE__SERVICEBUS_NAMESPACE"]
                == f"{n['serviceBus']}.servicebus.windows.net"
            )
        if f"{prefix}_REDIS__URL" in env:
            assert env[f"{prefix}_REDIS__URL"] == redis_url
    notifier = chart_values("notifier", environment)["env"]
    for key in ("NOTIFIER_EMAIL__ACS_ENDPOINT", "NOTIFIER_SMS__ACS_ENDPOINT"):
        host = notifier[key].removeprefix("https://").split(".")[0]
        assert host == n["communication"], key
    assert len(n["keyVault"]) <= 24
    assert re.fullmatch(r"[a-z0-9]{5,50}", n["acr"])


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_network_plan(main: BicepFile, environment: str) -> None:
    values = param_values(main, environment)

    def net(cidr: str) -> ipaddress.IPv4Network:
        return ipaddress.IPv4Network(cidr)

    hub = net(values["hubAddressPrefix"])
    spoke = net(values["spokeAddressPrefix"])
    assert not hub.overlaps(spoke)
    for key in ("hubFirewallSubnetPrefix", "hubGatewaySubnetPrefix"):
        assert net(values[key]).subnet_of(hub), key
    assert net(values["hubFirewallSubnetPrefix"]).prefixlen <= 26
    subnets = [
        net(values[k])
        for k in ("aksNodesSubnetPrefix", "privateEndpointsSubnetPrefix", "agcSubnetPrefix")
    ]
    for subnet in subnets:
        assert subnet.subnet_of(spoke), subnet
    for i, a in enumerate(subnets):
        for b in subnets[i + 1 :]:
            assert not a.overlaps(b), (a, b)
    # Application Gateway for Containers needs a /24 or larger.
    assert net(values["agcSubnetPrefix"]).prefixlen <= 24
    # The pod and service CIDRs of the overlay stay off every VNet.
    aks = module("aks")
    pods = net(resolved_param(aks, "podCidr"))
    services = net(resolved_param(aks, "serviceCidr"))
    for cidr in (pods, services):
        assert not cidr.overlaps(hub)
        assert not cidr.overlaps(spoke)
    assert not pods.overlaps(services)
    assert ipaddress.ip_address(resolved_param(aks, "dnsServiceIP")) in services


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_gateway_cidrs_are_the_agc_subnet(main: BicepFile, environment: str) -> None:
    agc = param_values(main, environment)["agcSubnetPrefix"]
    for service in SERVICES:
        policy = chart_values(service, environment)["networkPolicy"]
        if policy["ingress"]["fromGateway"]:
            assert policy["gateway"]["cidrs"] == [agc], service


def test_agc_subnet_is_delegated() -> None:
    file = module("network-spoke")
    spoke = body_of(file.resource("Microsoft.Network/virtualNetworks"))
    scope = {"subnetNames": file.variables["subnetNames"].value}
    subnets = {
        interpolate(s["name"], scope): s["properties"] for s in spoke["properties"]["subnets"]
    }
    delegations = subnets["snet-agc"]["delegations"]
    assert [d["properties"]["serviceName"] for d in delegations] == [
        "Microsoft.ServiceNetworking/trafficControllers"
    ]
    assert "delegations" not in subnets["snet-aks-nodes"]


def test_hub_and_spoke_are_peered_both_ways(main: BicepFile) -> None:
    peerings = [d for d in main.of("module") if d.type == "modules/vnet-peering.bicep"]
    assert len(peerings) == 2
    scopes = {body_of(d)["scope"].text for d in peerings}
    assert scopes == {"hubRg", "rg"}


def test_private_endpoints_use_the_matching_dns_zone(main: BicepFile) -> None:
    zones = literal(main.variables["privateDnsZoneNames"].value, "privateDnsZoneNames")
    endpoints = [d for d in main.of("module") if d.type == "modules/private-endpoint.bicep"]
    seen = set()
    for decl in endpoints:
        assert decl.value.condition.text.startswith("privateNetworking"), decl.name
        params = body_of(decl)["params"]
        group = params["groupId"]
        zone_id = params["privateDnsZoneId"]
        assert isinstance(zone_id, Call), decl.name
        assert zone_id.name == "resourceId"
        assert zone_id.args[2] == "Microsoft.Network/privateDnsZones"
        zone_ref = zone_id.args[3]
        assert isinstance(zone_ref, Expr), decl.name
        assert (
            zones[zone_ref.text.removeprefix("privateDnsZoneNames.")] == PRIVATE_LINK_ZONES[group]
        ), decl.name
        seen.add(group)
    assert seen == set(PRIVATE_LINK_ZONES)
    dns = body_of(main.get("module", "dnsZones"))["params"]["zoneNames"]
    assert {zones[e.text.split(".")[1]] for e in dns} == set(PRIVATE_LINK_ZONES.values())


def test_prod_is_private_and_dev_is_public(main: BicepFile) -> None:
    prod = param_values(main, "prod")
    dev = param_values(main, "dev")
    assert prod["privateNetworking"] is True
    assert prod["serviceBusSku"] == "Premium"  # private endpoints need Premium
    assert prod["acrSku"] == "Premium"
    assert prod["redisHighAvailability"] is True
    assert prod["mongoHighAvailability"] is True
    assert dev["privateNetworking"] is False
    assert main.variables["publicAccess"].value == Expr(
        "privateNetworking ? 'Disabled' : 'Enabled'"
    )


def test_outputs_cover_the_flux_cluster_settings(main: BicepFile) -> None:
    settings_output = literal(main.outputs["clusterSettings"].value, "clusterSettings")
    for environment in ENVIRONMENTS:
        data = yaml_file(GITOPS / "clusters" / environment / "cluster-settings.yaml")["data"]
        assert set(data) <= set(settings_output), environment
    used = set()
    for path in (GITOPS / "apps").rglob("*.yaml"):
        used |= set(re.findall(r"\$\{(\w+)\}", path.read_text(encoding="utf-8")))
    assert used <= set(settings_output)
    for service in SERVICES:
        key = f"{service.upper()}_CLIENT_ID"
        assert settings_output[key] == Expr(f"identityByName.{service}.clientId")


def test_outputs_the_charts_need(main: BicepFile) -> None:
    expected = {
        "tenantId",
        "oidcIssuerUrl",
        "acrLoginServer",
        "serviceBusFqdn",
        "redisHostName",
        "redisUrl",
        "mongoHost",
        "mongoUrl",
        "keyVaultName",
        "keyVaultUri",
        "appInsightsSecretName",
        "agcSubnetPrefix",
        "agcSubnetId",
        "kedaClientId",
        "albControllerClientId",
        "clusterSettings",
        "acsEndpoint",
        "acsSenderDomain",
        *(f"{s}ClientId" for s in SERVICES),
    }
    assert expected <= set(main.outputs)


# ---------------------------------------------------------------------------------------------
# The checks fire (mutations of the real files)
# ---------------------------------------------------------------------------------------------


def mutated(path: Path, old: str, new: str) -> BicepFile:
    source = path.read_text(encoding="utf-8")
    assert old in source, f"{old!r} not in {rel(path)}"
    return parse(source.replace(old, new, 1), path)


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("properties: {\n    subnet: {", "properties: {\n    subnet: {{"),  # unbalanced
        ("groupIds: [groupId]", "groupIds: [groupId"),  # unclosed
        ("name: 'default'", "name: 'default"),  # unterminated string
        ("param location string", "parm location string"),  # unknown statement
    ],
)
def test_syntax_errors_are_caught(old: str, new: str) -> None:
    with pytest.raises(BicepSyntaxError):
        mutated(MODULES / "private-endpoint.bicep", old, new)


def test_module_check_fires(main: BicepFile) -> None:
    path = BICEP_DIR / "main.bicep"
    assert module_problems(mutated(path, "'modules/monitoring.bicep'", "'modules/monitor.bicep'"))
    assert module_problems(
        mutated(path, "retentionInDays: logRetentionInDays", "retention: logRetentionInDays")
    )
    assert module_problems(
        mutated(
            path,
            "    queueName: 'deliveryrequests'\n",
            "    queueName: 'deliveryrequests'\n    foo: 1\n",
        )
    )
    assert module_problems(
        mutated(path, "monitoring.outputs.workspaceId", "monitoring.outputs.workspace")
    )
    assert module_problems(mutated(path, "    oidcIssuerUrl: aks.outputs.oidcIssuerUrl\n", "\n"))


def test_api_version_check_fires() -> None:
    path = MODULES / "redis.bicep"
    assert api_version_problems(
        mutated(path, "redisEnterprise@2025-07-01", "redisEnterprise@2025-08-01-preview")
    )
    assert api_version_problems(
        mutated(path, "'Microsoft.Cache/redisEnterprise@", "'Microsoft.Cache/redis@")
    )


def test_unused_check_fires() -> None:
    path = MODULES / "redis.bicep"
    assert unused_symbol_problems(
        mutated(path, "param tags object = {}", "param tags object = {}\nparam unused string")
    )


def test_role_assignment_check_fires() -> None:
    path = MODULES / "servicebus.bicep"
    assert role_assignment_problems(
        mutated(path, "name: guid(queue.id, grant.principalId, grant.role)", "name: grant.role")
    )
    assert role_assignment_problems(
        mutated(
            path, "090c5cfd-751d-490a-894a-3ce6f1109419", "8e3af657-a8ff-443c-a75c-2fe8c4bcb635"
        )
    )
    assert role_assignment_problems(
        mutated(path, "      principalType: 'ServicePrincipal'\n", "\n")
    )


def test_secret_checks_fire(main: BicepFile) -> None:
    assert secret_problems(
        mutated(
            MODULES / "acr.bicep",
            "output id string = registry.id",
            "output id string = registry.listKeys().keys[0]",
        )
    )
    assert secret_problems(
        mutated(
            MODULES / "monitoring.bicep",
            "output appInsightsId string = appInsights.id",
            "output appInsightsId string = appInsights.properties.ConnectionString",
        )
    )
    assert secret_problems(mutated(MODULES / "cosmos-mongo.bicep", "@secure()\n", ""))
    prod = BICEP_DIR / "main.prod.bicepparam"
    assert param_file_problems(
        mutated(
            prod, "readEnvironmentVariable('DRONEDELIVERY_MONGO_ADMIN_PASSWORD')", "'Sup3rS3cret!'"
        ),
        main,
    )
    assert param_file_problems(
        mutated(
            prod,
            "readEnvironmentVariable('DRONEDELIVERY_ADMIN_GROUP_ID')",
            "'0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0'",
        ),
        main,
    )
    assert param_file_problems(
        mutated(
            prod, "param location = 'eastus2'\n", "param location = 'eastus2'\nparam nope = 1\n"
        ),
        main,
    )
    assert param_file_problems(mutated(prod, "param hubAddressPrefix = '10.19.0.0/22'\n", ""), main)


def test_communication_services_send_keyless_from_a_managed_domain() -> None:
    acs = module("communication")
    service = body_of(acs.resource("Microsoft.Communication/communicationServices"))
    domain = body_of(acs.resource("Microsoft.Communication/emailServices/domains"))
    assert domain["properties"]["domainManagement"] == "AzureManaged"
    assert service["properties"]["linkedDomains"] == [Expr("managedDomain.id")]
    # The notifier signs in with Entra ID: nothing reads the resource's keys.
    source = (MODULES / "communication.bicep").read_text(encoding="utf-8")
    assert "listKeys" not in source
