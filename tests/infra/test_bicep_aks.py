"""The AKS module of infra/bicep: identity and access, the add-ons the charts need, the network
(CNI overlay with Cilium), pools autoscaling across zones, upgrades, and OS disks that fit each
environment's VM cache."""

from __future__ import annotations

from typing import Any

import pytest

from .bicep import BicepFile, Call, body_of, dig, is_expr
from .conftest import ENVIRONMENTS, literal, module, param_values, resolved_param

pytestmark = pytest.mark.timeout(30)


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
