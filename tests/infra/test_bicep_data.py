"""The data and messaging modules of infra/bicep: Service Bus, Managed Redis, Key Vault, Application
Insights, the container registry, MongoDB vCore and Communication Services, each keyless and
matching what the Helm charts configure."""

from __future__ import annotations

import re

import pytest

from .bicep import BicepFile, Expr, Interp, body_of, dig, interpolate, is_expr
from .conftest import ENVIRONMENTS, MODULES, SERVICES, chart_values, module, names, resolved_param

pytestmark = pytest.mark.timeout(30)


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


def test_communication_services_send_keyless_from_a_managed_domain() -> None:
    acs = module("communication")
    service = body_of(acs.resource("Microsoft.Communication/communicationServices"))
    domain = body_of(acs.resource("Microsoft.Communication/emailServices/domains"))
    assert domain["properties"]["domainManagement"] == "AzureManaged"
    assert service["properties"]["linkedDomains"] == [Expr("managedDomain.id")]
    # The notifier signs in with Entra ID: nothing reads the resource's keys.
    source = (MODULES / "communication.bicep").read_text(encoding="utf-8")
    assert "listKeys" not in source
