"""The building blocks of the service charts' values schemas: patterns, closed objects, and the
schema of each values section (resources, probes, env, autoscaling, KEDA, route, Entra ids,
network policy). values_schema.py assembles them into one schema per service.
"""

from __future__ import annotations

from typing import Any

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
