"""The charts' values files and their schemas: no secrets in them, every chart has its three, the
generated schemas are current and reject mistakes, and the library refuses inconsistent values.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from .conftest import CHARTS, ENVIRONMENTS, SERVICES, Helm, parse_manifests
from .policy import network_policy_problems, of_kind, values_secret_problems


def values_paths() -> list[Path]:
    return sorted(CHARTS.glob("*/values*.yaml"))


@pytest.mark.parametrize("path", values_paths(), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_values_files_hold_no_secrets(path: Path) -> None:
    assert values_secret_problems(yaml.safe_load(path.read_text(encoding="utf-8"))) == []


def test_every_chart_has_three_values_files_and_a_schema() -> None:
    for service in SERVICES:
        chart = CHARTS / service
        for name in [*ENVIRONMENTS.values(), "values.schema.json", "Chart.yaml"]:
            assert (chart / name).is_file(), chart / name
        meta = yaml.safe_load((chart / "Chart.yaml").read_text(encoding="utf-8"))
        assert meta["dependencies"] == [
            {
                "name": "dronedelivery-lib",
                "version": "0.1.0",
                "repository": "file://../dronedelivery-lib",
            }
        ]
    library = yaml.safe_load(
        (CHARTS / "dronedelivery-lib" / "Chart.yaml").read_text(encoding="utf-8")
    )
    assert library["type"] == "library"


def test_values_schemas_are_generated() -> None:
    # Run as its usage says (it imports its building blocks from its own folder, as a script).
    result = subprocess.run(
        [sys.executable, str(CHARTS / "values_schema.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, f"run: uv run python charts/values_schema.py\n{result.stderr}"


REJECTED = [
    pytest.param("delivery", ["--set", "resources.limit.cpu=1"], "limit", id="typo-in-resources"),
    pytest.param("delivery", ["--set", "replicas=3"], "replicas", id="unknown-top-level-key"),
    pytest.param("delivery", ["--set", "image.tag=latest"], "tag", id="latest-tag"),
    pytest.param(
        "delivery", ["--set", "env.DELIVERY_REDIS__PASSWORD=x"], "PASSWORD", id="secret-env"
    ),
    pytest.param(
        "delivery",
        ["--set", "env.APPLICATIONINSIGHTS_CONNECTION_STRING=x"],
        "APPLICATIONINSIGHTS",
        id="appinsights-literal",
    ),
    pytest.param(
        "package",
        ["--set", "env.DELIVERY_REDIS__URL=x"],
        "DELIVERY_REDIS__URL",
        id="other-service-prefix",
    ),
    pytest.param(
        "package", ["--set", "route.enabled=true"], "route", id="route-on-internal-service"
    ),
    pytest.param(
        "workflow", ["--set", "autoscaling.enabled=true"], "autoscaling", id="hpa-on-workflow"
    ),
    pytest.param("ingestion", ["--set", "keda.enabled=true"], "keda", id="keda-on-api"),
    pytest.param(
        "ingestion",
        ["--set", "workloadIdentity.clientId=not-a-guid"],
        "clientId",
        id="bad-client-id",
    ),
    pytest.param(
        "ingestion",
        ["--set", "networkPolicy.egress.azure.ports={22}"],
        "ports",
        id="unexpected-egress-port",
    ),
    pytest.param(
        "delivery",
        ["--set", "keyVault.enabled=true", "--set", "keyVault.name="],
        "name",
        id="keyvault-without-name",
    ),
]


@pytest.mark.parametrize(("service", "args", "mentions"), REJECTED)
def test_schema_rejects_mistakes(helm: Helm, service: str, args: list[str], mentions: str) -> None:
    result = helm.template(service, [], *args, check=False)
    assert result.returncode != 0, f"accepted: {args}"
    assert mentions in result.stderr


GUARDED = [
    pytest.param(
        "ingestion",
        [
            "--set-json",
            "networkPolicy.gateway.namespaces=[]",
            "--set-json",
            "networkPolicy.gateway.cidrs=[]",
        ],
        "admit everyone",
        id="gateway-ingress-without-peers",
    ),
    pytest.param(
        "ingestion",
        [
            "--set",
            "lifecycle.preStopSleepSeconds=30",
            "--set",
            "lifecycle.terminationGracePeriodSeconds=30",
        ],
        "preStopSleepSeconds",
        id="prestop-longer-than-grace",
    ),
    pytest.param(
        "delivery",
        ["--set", "autoscaling.minReplicas=5", "--set", "autoscaling.maxReplicas=2"],
        "minReplicas",
        id="hpa-min-above-max",
    ),
    pytest.param(
        "workflow",
        ["--set", "keda.minReplicas=5", "--set", "keda.maxReplicas=2"],
        "minReplicas",
        id="keda-min-above-max",
    ),
    pytest.param(
        "delivery", ["--set", "env.DELIVERY_PORT=9000"], "set by the chart", id="port-override"
    ),
    pytest.param(
        "workflow",
        [
            "--set-json",
            'networkPolicy.egress.azure.cidrs=["10.20.0.0/16"]',
            "--set-json",
            'networkPolicy.egress.azure.except=["10.21.4.0/24"]',
        ],
        "10.21.4.0/24 is not strictly inside",
        id="egress-except-outside-its-cidrs",
    ),
    pytest.param(
        "workflow",
        [
            "--set-json",
            'networkPolicy.egress.azure.cidrs=["10.20.0.0/16"]',
            "--set-json",
            'networkPolicy.egress.azure.except=["10.20.0.0/16"]',
        ],
        "10.20.0.0/16 is not strictly inside",
        id="egress-except-equal-to-its-cidr",
    ),
    pytest.param(
        "delivery",
        [
            "--set",
            "keyVault.enabled=true",
            "--set",
            "keyVault.name=kv-x1",
            "--set",
            "workloadIdentity.enabled=false",
        ],
        "workloadIdentity",
        id="keyvault-without-identity",
    ),
]


@pytest.mark.parametrize(("service", "args", "mentions"), GUARDED)
def test_library_refuses_inconsistent_values(
    helm: Helm, service: str, args: list[str], mentions: str
) -> None:
    result = helm.template(service, [], *args, check=False)
    assert result.returncode != 0, f"accepted: {args}"
    assert mentions in result.stderr


def test_egress_except_goes_to_the_cidr_that_contains_it(helm: Helm) -> None:
    """Each ipBlock gets only the except ranges inside it: the API server refuses any other."""
    docs = parse_manifests(
        helm.template(
            "workflow",
            [],
            "--set-json",
            'networkPolicy.egress.azure.cidrs=["10.20.0.0/16", "10.30.0.0/16", "0.0.0.0/0"]',
            "--set-json",
            'networkPolicy.egress.azure.except=["10.20.4.0/24", "10.30.128.0/17"]',
        ).stdout
    )
    (policy,) = of_kind(docs, "NetworkPolicy")
    blocks = {
        peer["ipBlock"]["cidr"]: peer["ipBlock"].get("except")
        for rule in policy["spec"]["egress"]
        for peer in rule["to"]
        if "ipBlock" in peer
    }
    assert blocks == {
        "10.20.0.0/16": ["10.20.4.0/24"],
        "10.30.0.0/16": ["10.30.128.0/17"],
        "0.0.0.0/0": ["10.20.4.0/24", "10.30.128.0/17"],
    }
    assert network_policy_problems(policy) == []
