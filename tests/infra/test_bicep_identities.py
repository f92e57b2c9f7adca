"""Identities in infra/bicep: one managed identity per service with its chart's ServiceAccount,
federated credentials trusting the cluster's issuer, KEDA and the ALB controller, and role grants
that follow what each chart uses, scoped to the resource, to the least-privileged principals."""

from __future__ import annotations

import re
from typing import Any

import pytest

from .bicep import BicepFile, Call, Expr, For, body_of, interpolate, is_expr
from .conftest import (
    CHARTS,
    ENVIRONMENTS,
    GITOPS,
    SERVICES,
    chart_values,
    literal,
    module,
    param_values,
    yaml_file,
)

pytestmark = pytest.mark.timeout(30)


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
