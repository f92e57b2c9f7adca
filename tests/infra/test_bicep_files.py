"""Structural tests of every file in infra/bicep (no Bicep compiler and no Azure here: see
infra/README.md, "What is validated").

They read the Bicep source with tests/infra/bicep.py and check, with tests/infra/checks.py: that
every file parses (balanced, terminated, known statements); module wiring (paths, params,
outputs); API versions against a pinned allowlist; unused params/vars; role assignments (guid
names, known roles); keyless access and no secrets in outputs or parameter files; and, on
mutations of the real files, that each of these checks fires. The modules' own settings:
test_bicep_aks.py, test_bicep_data.py, test_bicep_identities.py, test_bicep_network.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from .bicep import BICEP_DIR, BicepFile, BicepSyntaxError, load, parse
from .checks import (
    api_version_problems,
    bicep_files,
    module_problems,
    param_file_problems,
    param_files,
    role_assignment_problems,
    secret_problems,
    unused_symbol_problems,
)
from .conftest import ENVIRONMENTS, MODULES, param_file, rel

pytestmark = pytest.mark.timeout(30)


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
