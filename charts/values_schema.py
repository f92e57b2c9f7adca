"""Write (or ``--check``) every service chart's ``values.schema.json``.

The service charts take the same values (the library renders them all), with a few
differences: only the public services (ingestion, delivery, the web app) have a ``route``, only
the workflow has ``keda`` (and no ``autoscaling``), ``entra`` names the APIs each one calls (and
the web app's sign-in client), and each service's ``env`` names carry its own prefix. One
definition here keeps the schemas from drifting; ``--check`` (run by scripts/charts.sh and
tests/deploy) fails when a committed schema differs from what this file generates.

Usage: ``uv run python charts/values_schema.py [--check]``
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

CHARTS = Path(__file__).resolve().parent

PUBLIC = ("ingestion", "delivery", "webapp")
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
QUEUE_CONSUMERS = ("workflow",)

Schema = dict[str, Any]

UUID = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
CPU = r"^([0-9]+m|[0-9]+(\.[0-9]{1,3})?)$"
MEMORY = r"^[0-9]+(Ki|Mi|Gi)$"
CIDR = r"^([0-9]{1,3}\.){3}[0-9]{1,3}/([0-9]|[12][0-9]|3[0-2])$"
DNS_LABEL = r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"
LABEL_VALUE = r"^(([A-Za-z0-9][-A-Za-z0-9_.]{0,61})?[A-Za-z0-9])?$"
PERCENT_OR_INT: Schema = {
    "oneOf": [
        {"type": "integer", "minimum": 0},
        {"type": "string", "pattern": r"^[0-9]{1,3}%$"},
    ]
}
# Names that must never carry a literal value in values files (they come from Key Vault).
SECRET_NAME = r"(?i)(PASSWORD|SECRET|CONNECTION_?STRING|ACCESS_?KEY|API_?KEY|SAS_?TOKEN)"  # noqa: S105 - names, not a password


def obj(
    properties: Schema,
    *,
    required: list[str] | None = None,
    when_enabled: Schema | None = None,
    **extra: Any,
) -> Schema:
    """A closed object (typos rejected); `when_enabled` applies when enabled is true."""
    schema: Schema = {
        "type": "object",
        "additionalProperties": False,
        "properties": properties,
        "required": list(properties) if required is None else required,
    }
    if when_enabled is not None:
        schema["if"] = {"properties": {"enabled": {"const": True}}}
        schema["then"] = when_enabled
    schema.update(extra)
    return schema


def integer(minimum: int = 0, maximum: int | None = None) -> Schema:
    schema: Schema = {"type": "integer", "minimum": minimum}
    if maximum is not None:
        schema["maximum"] = maximum
    return schema


def string_map() -> Schema:
    return {"type": "object", "additionalProperties": {"type": "string"}}


def labels_map() -> Schema:
    return {"type": "object", "additionalProperties": {"type": "string", "pattern": LABEL_VALUE}}


def resources() -> Schema:
    pair = obj(
        {"cpu": {"type": "string", "pattern": CPU}, "memory": {"type": "string", "pattern": MEMORY}}
    )
    return obj(
        {"requests": pair, "limits": pair},
        description="cpu and memory requests and limits, all required (the quota needs them).",
    )


def probe() -> Schema:
    return obj(
        {
            "periodSeconds": integer(1, 300),
            "timeoutSeconds": integer(1, 60),
            "failureThreshold": integer(1, 120),
        }
    )


def service_names(exclude: str) -> Schema:
    return {
        "type": "array",
        "uniqueItems": True,
        "items": {"enum": [name for name in SERVICES if name != exclude]},
    }


def env(service: str) -> Schema:
    prefix = service.upper()
    return {
        "type": "object",
        "description": (
            f"Plain settings as environment variables ({prefix}_* with __ nesting, OTEL_*). "
            "Values go through `tpl` ({{ .Release.Namespace }}, {{ .Values.azure.tenantId }}). "
            "Secrets never go here: they come from Key Vault (keyVault.secrets)."
        ),
        "propertyNames": {
            "pattern": rf"^({prefix}_[A-Z0-9_]+|OTEL_[A-Z0-9_]+)$",
            "not": {"pattern": SECRET_NAME},
        },
        "additionalProperties": {"type": ["string", "number", "boolean"]},
    }


def autoscaling() -> Schema:
    return obj(
        {
            "enabled": {"type": "boolean"},
            "minReplicas": integer(1, 100),
            "maxReplicas": integer(1, 100),
            "targetCPUUtilizationPercentage": integer(1, 100),
            "targetMemoryUtilizationPercentage": {
                **integer(0, 100),
                "description": "0 turns the memory metric off.",
            },
            "scaleUp": obj(
                {"stabilizationWindowSeconds": integer(0, 3600), "podsPerMinute": integer(1, 100)}
            ),
            "scaleDown": obj(
                {
                    "stabilizationWindowSeconds": integer(0, 3600),
                    "percentPerMinute": integer(1, 100),
                }
            ),
        }
    )


def keda() -> Schema:
    return obj(
        {
            "enabled": {"type": "boolean"},
            "serviceBusNamespace": {
                "type": "string",
                "description": (
                    "The Service Bus namespace *name* (not the host name); empty: taken from "
                    "env.WORKFLOW_QUEUE__SERVICEBUS_NAMESPACE."
                ),
                "pattern": r"^$|^[a-zA-Z][a-zA-Z0-9-]{4,48}[a-zA-Z0-9]$",
            },
            "queueName": {"type": "string", "minLength": 1, "maxLength": 260},
            "messageCount": {
                **integer(1, 100000),
                "description": "Target active messages per replica.",
            },
            "activationMessageCount": integer(0, 100000),
            "minReplicas": integer(0, 100),
            "maxReplicas": integer(1, 100),
            "pollingInterval": integer(1, 3600),
            "cooldownPeriod": integer(0, 86400),
            "fallback": obj({"failureThreshold": integer(1, 100), "replicas": integer(1, 100)}),
            "scaleDown": obj(
                {
                    "stabilizationWindowSeconds": integer(0, 3600),
                    "percentPerMinute": integer(1, 100),
                }
            ),
            "identityId": {
                "type": "string",
                "description": "Client id KEDA authenticates as; empty: workloadIdentity.clientId.",
                "anyOf": [{"const": ""}, {"pattern": UUID}],
            },
        }
    )


def route() -> Schema:
    return obj(
        {
            "enabled": {"type": "boolean"},
            "parentRefs": {
                "type": "array",
                "minItems": 1,
                "items": obj(
                    {
                        "name": {"type": "string", "pattern": DNS_LABEL},
                        "namespace": {"type": "string", "pattern": DNS_LABEL},
                        "sectionName": {"type": "string", "pattern": DNS_LABEL},
                    },
                    required=["name"],
                ),
            },
            "hostnames": {
                "type": "array",
                "items": {"type": "string", "pattern": r"^(\*\.)?[a-z0-9]([-a-z0-9.]*[a-z0-9])?$"},
            },
            "matches": {
                "type": "array",
                "minItems": 1,
                "description": "Gateway API HTTPRouteMatches: the public routes, each path "
                "(Exact or PathPrefix) with its method; nothing else reaches the service.",
                "items": obj(
                    {
                        "path": obj(
                            {
                                "type": {"enum": ["Exact", "PathPrefix"]},
                                "value": {"type": "string", "pattern": r"^/[A-Za-z0-9/_.-]*$"},
                            }
                        ),
                        "method": {
                            "enum": ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
                        },
                    }
                ),
            },
            "edgeHeader": {
                "type": "boolean",
                "description": "Set Dronedelivery-Edge on every request routed (the service's "
                "internal routes then answer 404 to it).",
            },
            "timeout": {
                "type": "string",
                "description": "The route's request timeout at Application Gateway for "
                "Containers (a RoutePolicy); 0s: none (long-lived streams); empty: AGC's default.",
                "pattern": r"^([0-9]+(ms|s|m|h))?$",
            },
        }
    )


# The APIs with an app registration of their own (service tokens), and who calls which.
OWN_API = ("delivery", "package", "dronescheduler", "simulator", "notifier")
CALLS = {
    "workflow": ("package", "dronescheduler", "delivery"),
    "simulator": ("dronescheduler", "delivery"),
    "notifier": ("delivery",),
    "webapp": ("simulator", "notifier"),
}


def entra(service: str) -> Schema:
    """Application (client) ids of the Entra app registrations the service's tokens name."""
    client_id: Schema = {"type": "string", "pattern": UUID}
    properties: Schema = {}
    properties["publicApiClientId"] = client_id
    if service in OWN_API:
        properties["apiClientId"] = client_id
    if service in CALLS:
        properties["apis"] = obj(dict.fromkeys(CALLS[service], client_id))
    if service == "webapp":
        # The web app's own app registration: the client people sign in to (MSAL).
        properties["signInClientId"] = client_id
    return obj(properties)


def network_policy(service: str) -> Schema:
    return obj(
        {
            "enabled": {"type": "boolean"},
            "ingress": obj(
                {"fromGateway": {"type": "boolean"}, "fromServices": service_names(service)}
            ),
            "egress": obj(
                {
                    "toServices": service_names(service),
                    "azure": obj(
                        {
                            "cidrs": {
                                "type": "array",
                                "items": {"type": "string", "pattern": CIDR},
                            },
                            "except": {
                                "type": "array",
                                "items": {"type": "string", "pattern": CIDR},
                            },
                            "ports": {
                                "type": "array",
                                "uniqueItems": True,
                                "items": {"enum": [443, 5671, 6380, 10000, 10255, 10260]},
                            },
                        }
                    ),
                }
            ),
            "gateway": obj(
                {
                    "namespaces": {
                        "type": "array",
                        "items": {"type": "string", "pattern": DNS_LABEL},
                    },
                    "podLabels": labels_map(),
                    "cidrs": {"type": "array", "items": {"type": "string", "pattern": CIDR}},
                }
            ),
            "dns": obj(
                {"namespace": {"type": "string", "pattern": DNS_LABEL}, "podLabels": labels_map()}
            ),
        }
    )


def schema_for(service: str) -> Schema:
    properties: Schema = {
        "component": {"const": "worker" if service in QUEUE_CONSUMERS else "api"},
        "image": obj(
            {
                "registry": {
                    "type": "string",
                    "pattern": r"^$|^[a-z0-9]([-a-z0-9.]*[a-z0-9])?(:[0-9]+)?$",
                },
                "repository": {"type": "string", "pattern": r"^[a-z0-9]+([._/-][a-z0-9]+)*$"},
                "tag": {
                    "type": "string",
                    "description": "Empty: the chart's appVersion. Never `latest`.",
                    "pattern": r"^$|^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$",
                    "not": {"const": "latest"},
                },
                "digest": {"type": "string", "pattern": r"^$|^sha256:[a-f0-9]{64}$"},
                "pullPolicy": {"enum": ["IfNotPresent", "Always"]},
            }
        ),
        "replicaCount": {
            **integer(1, 100),
            "description": "Replicas when neither an HPA nor KEDA owns the count.",
        },
        "rollingUpdate": obj({"maxSurge": PERCENT_OR_INT, "maxUnavailable": PERCENT_OR_INT}),
        "resources": resources(),
        "azure": obj({"tenantId": {"type": "string", "pattern": UUID}}),
        "entra": entra(service),
        "workloadIdentity": obj(
            {
                "enabled": {"type": "boolean"},
                "clientId": {
                    "type": "string",
                    "description": "Client id of the service's user-assigned managed identity.",
                    "pattern": UUID,
                },
            }
        ),
        "serviceAccount": obj({"automountToken": {"type": "boolean"}}),
        "env": env(service),
        "envFrom": {
            "type": "array",
            "items": obj(
                {
                    "prefix": {"type": "string"},
                    "configMapRef": obj(
                        {
                            "name": {"type": "string", "pattern": DNS_LABEL},
                            "optional": {"type": "boolean"},
                        },
                        required=["name"],
                    ),
                    "secretRef": obj(
                        {
                            "name": {"type": "string", "pattern": DNS_LABEL},
                            "optional": {"type": "boolean"},
                        },
                        required=["name"],
                    ),
                },
                required=[],
                minProperties=1,
            ),
        },
        "keyVault": obj(
            {
                "enabled": {"type": "boolean"},
                "name": {
                    "type": "string",
                    "pattern": r"^$|^[a-zA-Z][a-zA-Z0-9-]{1,22}[a-zA-Z0-9]$",
                },
                "cloudName": {
                    "enum": ["", "AzurePublicCloud", "AzureUSGovernmentCloud", "AzureChinaCloud"]
                },
                "secrets": {
                    "type": "array",
                    "items": obj(
                        {
                            "objectName": {"type": "string", "pattern": r"^[0-9a-zA-Z-]{1,127}$"},
                            "env": {"type": "string", "pattern": r"^[A-Z_][A-Z0-9_]*$"},
                        }
                    ),
                },
            },
            when_enabled={"properties": {"name": {"minLength": 3}, "secrets": {"minItems": 1}}},
        ),
        "service": obj({"enabled": {"type": "boolean"}, "port": integer(1, 65535)}),
        "probes": obj({"startup": probe(), "liveness": probe(), "readiness": probe()}),
        "lifecycle": obj(
            {
                "preStopSleepSeconds": {
                    **integer(0, 120),
                    "description": "0: no preStop hook (a service no traffic is routed to).",
                },
                "terminationGracePeriodSeconds": integer(1, 600),
            }
        ),
        "tmpSizeLimit": {"type": "string", "pattern": MEMORY},
        "pdb": obj({"enabled": {"type": "boolean"}, "maxUnavailable": PERCENT_OR_INT}),
        "topologySpread": obj(
            {
                key: obj(
                    {
                        "maxSkew": integer(1, 10),
                        "whenUnsatisfiable": {"enum": ["DoNotSchedule", "ScheduleAnyway"]},
                    }
                )
                for key in ("zone", "hostname")
            }
        ),
        "networkPolicy": network_policy(service),
        "podAnnotations": string_map(),
        "nodeSelector": string_map(),
        "tolerations": {"type": "array", "items": {"type": "object"}},
        "priorityClassName": {"type": "string"},
    }
    if service in PUBLIC:
        properties["route"] = route()
    if service in QUEUE_CONSUMERS:
        properties["keda"] = keda()
    else:
        properties["autoscaling"] = autoscaling()
    required = list(properties)
    # Helm adds an entry for each dependency (the library has no values of its own) and `global`.
    properties["dronedelivery-lib"] = {"type": "object"}
    properties["global"] = {"type": "object"}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"https://dronedelivery.local/charts/{service}/values.schema.json",
        "title": f"{service} chart values",
        "description": "Generated by charts/values_schema.py: edit that file, not this one.",
        **obj(properties, required=required),
    }


def render(service: str) -> str:
    return json.dumps(schema_for(service), indent=2) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if a committed schema differs")
    args = parser.parse_args(argv)
    stale = []
    for service in SERVICES:
        path = CHARTS / service / "values.schema.json"
        text = render(service)
        if args.check:
            if not path.exists() or path.read_text(encoding="utf-8") != text:
                stale.append(str(path.relative_to(CHARTS.parent)))
        else:
            path.write_text(text, encoding="utf-8")
    if stale:
        sys.stderr.write(
            "stale values schemas (run `uv run python charts/values_schema.py`): "
            + ", ".join(stale)
            + "\n"
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
