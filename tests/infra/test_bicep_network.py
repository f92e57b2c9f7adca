"""Names, network and outputs of infra/bicep against the Helm charts and the Flux layout: resource
names per environment, the address plan, the gateway subnet, hub-and-spoke peering, private
endpoints and their DNS zones, prod private and dev public, and the outputs the cluster settings
and the charts need."""

from __future__ import annotations

import ipaddress
import re

import pytest

from .bicep import BicepFile, Call, Expr, body_of, interpolate
from .checks import PRIVATE_LINK_ZONES
from .conftest import (
    ENVIRONMENTS,
    GITOPS,
    SERVICES,
    chart_values,
    literal,
    module,
    names,
    param_values,
    resolved_param,
    yaml_file,
)

pytestmark = pytest.mark.timeout(30)


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
