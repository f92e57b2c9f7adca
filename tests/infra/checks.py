"""Checks over the Bicep source (tests/infra/bicep.py reads it). Each returns a list of problems,
so the tests assert an empty list and the mutation tests prove a check fires on a broken input."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from .bicep import BICEP_DIR, BicepFile, Call, Declaration, Expr, For, If, Interp, body_of, load

# Resource types and the one API version each may use. Stable versions only, checked against
# Microsoft's published REST API specifications / template reference when pinned; bump them here
# and in the .bicep files together.
API_VERSIONS: dict[str, str] = {
    "Microsoft.Resources/resourceGroups": "2024-03-01",
    "Microsoft.Network/virtualNetworks": "2024-07-01",
    "Microsoft.Network/virtualNetworks/subnets": "2024-07-01",
    "Microsoft.Network/virtualNetworks/virtualNetworkPeerings": "2024-07-01",
    "Microsoft.Network/networkSecurityGroups": "2024-07-01",
    "Microsoft.Network/privateEndpoints": "2024-07-01",
    "Microsoft.Network/privateEndpoints/privateDnsZoneGroups": "2024-07-01",
    "Microsoft.Network/privateDnsZones": "2024-06-01",
    "Microsoft.Network/privateDnsZones/virtualNetworkLinks": "2024-06-01",
    "Microsoft.ContainerService/managedClusters": "2025-10-01",
    "Microsoft.ContainerService/managedClusters/maintenanceConfigurations": "2025-10-01",
    "Microsoft.ManagedIdentity/userAssignedIdentities": "2024-11-30",
    "Microsoft.ManagedIdentity/userAssignedIdentities/federatedIdentityCredentials": "2024-11-30",
    "Microsoft.Authorization/roleAssignments": "2022-04-01",
    "Microsoft.ContainerRegistry/registries": "2025-04-01",
    "Microsoft.KeyVault/vaults": "2024-11-01",
    "Microsoft.KeyVault/vaults/secrets": "2024-11-01",
    "Microsoft.ServiceBus/namespaces": "2024-01-01",
    "Microsoft.ServiceBus/namespaces/queues": "2024-01-01",
    "Microsoft.Cache/redisEnterprise": "2025-07-01",
    "Microsoft.Cache/redisEnterprise/databases": "2025-07-01",
    "Microsoft.Cache/redisEnterprise/databases/accessPolicyAssignments": "2025-07-01",
    "Microsoft.DocumentDB/mongoClusters": "2025-09-01",
    "Microsoft.DocumentDB/mongoClusters/users": "2025-09-01",
    "Microsoft.DocumentDB/mongoClusters/firewallRules": "2025-09-01",
    "Microsoft.OperationalInsights/workspaces": "2025-02-01",
    "Microsoft.Insights/components": "2020-02-02",
    "Microsoft.Insights/dataCollectionRules": "2023-03-11",
    "Microsoft.Insights/dataCollectionRuleAssociations": "2023-03-11",
    "Microsoft.Communication/communicationServices": "2023-04-01",
    "Microsoft.Communication/emailServices": "2023-04-01",
    "Microsoft.Communication/emailServices/domains": "2023-04-01",
    # The only version of diagnostic settings (an extension resource); "preview" in name only.
    "Microsoft.Insights/diagnosticSettings": "2021-05-01-preview",
}

# Built-in role definitions the templates may assign, by id. Anything else is a new privilege and
# must be added here on purpose.
ROLES: dict[str, str] = {
    "7f951dda-4ed3-4680-a7ca-43fe172d538d": "AcrPull",
    "8311e382-0749-4cb8-b61a-304f252e45ec": "AcrPush",
    "4633458b-17de-408a-b874-0445c86b69e6": "Key Vault Secrets User",
    "69a216fc-b8fb-44d8-bc22-1f3c2cd27a39": "Azure Service Bus Data Sender",
    "4f6d3b9b-027b-4f4c-9142-0e5a2a2247e0": "Azure Service Bus Data Receiver",
    "090c5cfd-751d-490a-894a-3ce6f1109419": "Azure Service Bus Data Owner",
    "4d97b98b-1d4f-4787-a291-c67834d212e7": "Network Contributor",
    "acdd72a7-3385-48ef-bd42-f606fba81ae7": "Reader",
    "fbc52c3f-28ad-4303-a892-8a056630b8f1": "AppGw for Containers Configuration Manager",
    "b1ff04bb-8a4e-4dc4-8eb5-8693973ce19b": "Azure Kubernetes Service RBAC Cluster Admin",
    "09976791-48a7-449e-bb21-39d1a415f350": "Communication and Email Service Owner",
}

# Private endpoint sub-resource -> the private DNS zone its records belong in.
PRIVATE_LINK_ZONES: dict[str, str] = {
    "vault": "privatelink.vaultcore.azure.net",
    "namespace": "privatelink.servicebus.windows.net",
    "redisEnterprise": "privatelink.redis.azure.net",
    "MongoCluster": "privatelink.mongocluster.cosmos.azure.com",
    "registry": "privatelink.azurecr.io",
}

GUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.IGNORECASE)
SECRET_WORDS = re.compile(
    r"password|secret|connectionstring|accountkey|sharedaccesskey|apikey", re.I
)


def bicep_files() -> list[Path]:
    return sorted(BICEP_DIR.rglob("*.bicep"))


def param_files() -> list[Path]:
    return sorted(BICEP_DIR.glob("*.bicepparam"))


def walk(value: Any) -> Any:
    """Every value nested in value (itself included)."""
    yield value
    if isinstance(value, dict):
        for v in value.values():
            yield from walk(v)
    elif isinstance(value, list | tuple):
        for v in value:
            yield from walk(v)
    elif isinstance(value, Call):
        for v in value.args:
            yield from walk(v)
    elif isinstance(value, For):
        yield from walk(value.iterable)
        yield from walk(value.body)
    elif isinstance(value, If):
        yield from walk(value.body)


def secret_looking(name: str) -> bool:
    """A name that says it holds a secret (not one that names or grants one)."""
    return bool(SECRET_WORDS.search(name)) and not re.search(r"(Name|Names|Ids?)$", name)


def is_required(param: Declaration) -> bool:
    return not param.has_value and not param.type.endswith("?")


# ---------------------------------------------------------------------------------------------
# Checks
# ---------------------------------------------------------------------------------------------


def module_problems(file: BicepFile) -> list[str]:
    """Every module path exists; its params are declared there; its required params are given;
    every <module>.outputs.<name> used exists in that module."""
    problems: list[str] = []
    modules: dict[str, BicepFile] = {}
    for decl in file.of("module"):
        path = (file.path.parent / decl.type).resolve()
        if not path.is_file():
            problems.append(f"{file.rel}: module {decl.name}: {decl.type} does not exist")
            continue
        target = load(path)
        modules[decl.name] = target
        given = body_of(decl).get("params", {})
        if not isinstance(given, dict):
            problems.append(f"{file.rel}: module {decl.name}: params is not an object literal")
            continue
        declared = target.params
        where = f"{file.rel}: module {decl.name}"
        problems += [f"{where}: {target.rel} has no param {n}" for n in given if n not in declared]
        problems += [
            f"{where}: required param {n} not given"
            for n, param in declared.items()
            if is_required(param) and n not in given
        ]
    problems += [
        f"{file.rel}: {symbol}.outputs.{output}: no such output"
        for symbol, output in re.findall(r"\b(\w+)\.outputs\.(\w+)", file.source)
        if symbol in modules and output not in modules[symbol].outputs
    ]
    return problems


def api_version_problems(file: BicepFile, allowed: dict[str, str] = API_VERSIONS) -> list[str]:
    problems: list[str] = []
    for decl in file.of("resource"):
        type_name, _, version = decl.type.partition("@")
        if not version:
            problems.append(f"{file.rel}: resource {decl.name}: no API version")
        elif type_name not in allowed:
            problems.append(
                f"{file.rel}: resource {decl.name}: {type_name} is not in the allowlist"
            )
        elif allowed[type_name] != version:
            problems.append(
                f"{file.rel}: resource {decl.name}: {type_name}@{version}, "
                f"the pinned version is {allowed[type_name]}"
            )
    return problems


def unused_symbol_problems(file: BicepFile) -> list[str]:
    """Every param and var is referenced (the compiler's no-unused-params/vars linter rules)."""
    counts: dict[str, int] = {}
    for name in file.identifiers():
        counts[name] = counts.get(name, 0) + 1
    return [
        f"{file.rel}: {decl.keyword} {decl.name} is never used"
        for decl in file.of("param") + file.of("var")
        if counts.get(decl.name, 0) < 2
    ]


def role_assignment_problems(file: BicepFile, roles: dict[str, str] = ROLES) -> list[str]:
    """Role assignments: a deterministic guid(...) name, a known built-in role, a principal type."""
    problems: list[str] = []
    for decl in file.resources("Microsoft.Authorization/roleAssignments"):
        body = body_of(decl)
        name = body.get("name")
        if not (isinstance(name, Call) and name.name == "guid" and len(name.args) >= 2):
            problems.append(f"{file.rel}: {decl.name}: name is not guid(scope, principal, role)")
        props = body.get("properties", {})
        role = props.get("roleDefinitionId")
        if not (
            isinstance(role, Call)
            and role.name == "subscriptionResourceId"
            and role.args[0] == "Microsoft.Authorization/roleDefinitions"
        ):
            problems.append(
                f"{file.rel}: {decl.name}: roleDefinitionId is not subscriptionResourceId(...)"
            )
        if "principalType" not in props:
            problems.append(
                f"{file.rel}: {decl.name}: no principalType (replication delays fail it)"
            )
    problems += [
        f"{file.rel}: unknown GUID {guid} (a role not in the allowlist?)"
        for guid in GUID.findall(file.source)
        if guid.lower() not in roles
    ]
    return problems


def secret_problems(file: BicepFile) -> list[str]:
    """No key-based access and no secrets in outputs or param files."""
    problems = [
        f"{file.rel}: {fn}() reads a key: use Entra ID"
        for fn in ("listKeys", "listConnectionStrings", "listCredentials", "listAccountSas")
        if re.search(rf"\b{fn}\s*\(", file.source)
    ]
    for name, out in file.outputs.items():
        text = out.value.text if isinstance(out.value, Expr) else str(out.value)
        if secret_looking(name) or re.search(r"ConnectionString|password", text, re.I):
            problems.append(f"{file.rel}: output {name} may carry a secret")
    for name, param in file.params.items():
        if secret_looking(name) and file.path.suffix == ".bicep":
            if param.decorator("secure") is None:
                problems.append(f"{file.rel}: param {name} looks secret but is not @secure()")
            if param.has_value:
                problems.append(f"{file.rel}: secure param {name} has a default value")
    return problems


# What reads a value from outside the file (the environment, a vault).
OUTSIDE = ("readEnvironmentVariable", "az.getSecret", "getSecret")


def _inside(value: Any) -> Any:
    """The values written in the file: ``walk`` without what comes from outside."""
    if isinstance(value, Call) and value.name in OUTSIDE:
        return
    yield value
    if isinstance(value, dict):
        for v in value.values():
            yield from _inside(v)
    elif isinstance(value, list | tuple):
        for v in value:
            yield from _inside(v)
    elif isinstance(value, Call):
        for v in value.args:
            yield from _inside(v)


def param_file_problems(param_file: BicepFile, main: BicepFile) -> list[str]:
    problems: list[str] = []
    using = param_file.of("using")
    if len(using) != 1 or (param_file.path.parent / using[0].type).resolve() != main.path.resolve():
        problems.append(f"{param_file.rel}: must say using '{main.path.name}'")
    declared = main.params
    given = param_file.params
    problems += [
        f"{param_file.rel}: {n} is not a parameter of {main.path.name}"
        for n in given
        if n not in declared
    ]
    problems += [
        f"{param_file.rel}: required parameter {n} not set"
        for n, param in declared.items()
        if is_required(param) and n not in given
    ]
    for name, value in given.items():
        secure = name in declared and declared[name].decorator("secure") is not None
        v = value.value
        from_outside = isinstance(v, Call) and v.name in OUTSIDE
        if secure and not from_outside:
            problems.append(
                f"{param_file.rel}: secure parameter {name} must come from outside (env, vault)"
            )
        if from_outside:
            continue
        for item in _inside(v):
            if isinstance(item, str) and (
                re.search(r"(AccountKey|SharedAccessKey|Password)=", item, re.I)
                or (
                    len(item) >= 32
                    and re.fullmatch(r"[A-Za-z0-9+/=_\-]{32,}", item)
                    and not GUID.fullmatch(item)
                )
            ):
                problems.append(
                    f"{param_file.rel}: {name} holds something that looks like a secret"
                )
            if isinstance(item, str) and GUID.fullmatch(item):
                problems.append(
                    f"{param_file.rel}: {name} holds a tenant-specific id: read it from outside"
                )
    return problems


def interp_template(value: Any) -> str:
    assert isinstance(value, Interp), value
    return value.template
