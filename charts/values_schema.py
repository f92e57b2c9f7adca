"""Write (or ``--check``) every service chart's ``values.schema.json``.

The service charts take the same values (the library renders them all), with a few
differences: only the public services (ingestion, delivery, the web app) have a ``route``, only
the workflow has ``keda`` (and no ``autoscaling``), ``entra`` names the APIs each one calls (and
the web app's sign-in client), and each service's ``env`` names carry its own prefix. One
definition here (its building blocks in values_schema_blocks.py) keeps the schemas from
drifting; ``--check`` (run by scripts/charts.sh and tests/deploy) fails when a committed schema
differs from what this file generates.

Usage: ``uv run python charts/values_schema.py [--check]``
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

# The building blocks sit beside this file (run as a script, its folder is on sys.path).
from values_schema_blocks import (
    DNS_LABEL,
    MEMORY,
    PERCENT_OR_INT,
    PUBLIC,
    QUEUE_CONSUMERS,
    SERVICES,
    UUID,
    Schema,
    autoscaling,
    entra,
    env,
    integer,
    keda,
    network_policy,
    obj,
    probe,
    resources,
    route,
    string_map,
)

CHARTS = Path(__file__).resolve().parent


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
