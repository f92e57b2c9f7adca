"""Deployment policies over the custom resources a chart renders (KEDA, Gateway API, Application
Gateway for Containers, Secrets Store CSI): no schema offline, so their required fields and
cross-references are checked here. Pure functions returning problems, like policy.py.
"""

from __future__ import annotations

import re

import yaml

from .policy import UUID, Manifest, name_of, of_kind, pod_template


def custom_resource_problems(docs: list[Manifest]) -> list[str]:
    """Required fields and cross-references of the CRD-based resources a chart renders."""
    problems = []
    services = {s["metadata"]["name"]: s for s in of_kind(docs, "Service")}
    deployments = {d["metadata"]["name"]: d for d in of_kind(docs, "Deployment")}
    auths = {a["metadata"]["name"]: a for a in of_kind(docs, "TriggerAuthentication")}
    for scaled in of_kind(docs, "ScaledObject"):
        spec = scaled.get("spec") or {}
        target = (spec.get("scaleTargetRef") or {}).get("name")
        if target not in deployments:
            problems.append(
                f"{name_of(scaled)}: scaleTargetRef {target} is not a rendered Deployment"
            )
        low, high = spec.get("minReplicaCount"), spec.get("maxReplicaCount")
        if not isinstance(low, int) or not isinstance(high, int) or not 0 <= low <= high:
            problems.append(f"{name_of(scaled)}: minReplicaCount/maxReplicaCount {low}/{high}")
        if not isinstance(spec.get("cooldownPeriod"), int):
            problems.append(f"{name_of(scaled)}: no cooldownPeriod")
        fallback = spec.get("fallback") or {}
        if not isinstance(fallback.get("failureThreshold"), int) or not isinstance(
            fallback.get("replicas"), int
        ):
            problems.append(f"{name_of(scaled)}: no fallback (failureThreshold, replicas)")
        triggers = spec.get("triggers") or []
        if not triggers:
            problems.append(f"{name_of(scaled)}: no triggers")
        for trigger in triggers:
            meta = trigger.get("metadata") or {}
            if trigger.get("type") == "azure-servicebus":
                if not meta.get("queueName"):
                    problems.append(
                        f"{name_of(scaled)}: azure-servicebus trigger without queueName"
                    )
                if not meta.get("namespace"):
                    problems.append(
                        f"{name_of(scaled)}: azure-servicebus trigger without namespace"
                    )
                if not str(meta.get("messageCount", "")).isdigit():
                    problems.append(f"{name_of(scaled)}: messageCount must be a number as a string")
            ref = (trigger.get("authenticationRef") or {}).get("name")
            if ref not in auths:
                problems.append(f"{name_of(scaled)}: authenticationRef {ref} is not rendered")
    for auth in auths.values():
        identity = (auth.get("spec") or {}).get("podIdentity") or {}
        if identity.get("provider") != "azure-workload":
            problems.append(f"{name_of(auth)}: podIdentity.provider is not azure-workload")
        if not UUID.match(str(identity.get("identityId", ""))):
            problems.append(f"{name_of(auth)}: podIdentity.identityId is not a client id")
    for route in of_kind(docs, "HTTPRoute"):
        spec = route.get("spec") or {}
        if not all(ref.get("name") for ref in spec.get("parentRefs") or [{}]):
            problems.append(f"{name_of(route)}: parentRefs must name a Gateway")
        for rule in spec.get("rules") or [{}]:
            for match in rule.get("matches") or [{}]:
                path = (match.get("path") or {}).get("value", "")
                # The public API lives under /api/; the web app takes the rest (its catch-all).
                webapp = (route.get("metadata") or {}).get("name") == "webapp"
                if webapp and path != "/":
                    problems.append(f"{name_of(route)}: the web app's route is the catch-all '/'")
                elif not webapp and not str(path).startswith("/api/"):
                    problems.append(f"{name_of(route)}: path {path!r} outside /api/")
            for backend in rule.get("backendRefs") or [{}]:
                service = services.get(backend.get("name", ""))
                ports = {p.get("port") for p in (service or {}).get("spec", {}).get("ports", [])}
                if service is None or backend.get("port") not in ports:
                    problems.append(
                        f"{name_of(route)}: backend {backend} is not a rendered Service port"
                    )
    routes = {r["metadata"]["name"] for r in of_kind(docs, "HTTPRoute")}
    for policy in of_kind(docs, "RoutePolicy"):
        spec = policy.get("spec") or {}
        target = spec.get("targetRef") or {}
        if target.get("kind") != "HTTPRoute" or target.get("name") not in routes:
            problems.append(f"{name_of(policy)}: targetRef {target} is not a rendered HTTPRoute")
        timeout = ((spec.get("default") or {}).get("timeouts") or {}).get("routeTimeout")
        if not re.match(r"^[0-9]+(ms|s|m|h)$", str(timeout)):
            problems.append(f"{name_of(policy)}: routeTimeout {timeout!r} is not a duration")
    for spc in of_kind(docs, "SecretProviderClass"):
        problems += secret_provider_problems(spc, list(deployments.values()))
    return problems


def secret_provider_problems(spc: Manifest, deployments: list[Manifest]) -> list[str]:
    spec = spc.get("spec") or {}
    params = spec.get("parameters") or {}
    problems = []
    if spec.get("provider") != "azure":
        problems.append(f"{name_of(spc)}: provider is not azure")
    if params.get("usePodIdentity") != "false":
        problems.append(f'{name_of(spc)}: usePodIdentity must be "false" (workload identity)')
    problems += [
        f"{name_of(spc)}: parameters.{key} is not a GUID"
        for key in ("clientID", "tenantId")
        if not UUID.match(str(params.get(key, "")))
    ]
    if not params.get("keyvaultName"):
        problems.append(f"{name_of(spc)}: no parameters.keyvaultName")
    try:
        objects = yaml.safe_load(params.get("objects", "")) or {}
        aliases = {
            (yaml.safe_load(item) or {}).get("objectAlias")
            or (yaml.safe_load(item) or {}).get("objectName")
            for item in objects.get("array", [])
        }
    except yaml.YAMLError as exc:
        return [*problems, f"{name_of(spc)}: parameters.objects is not YAML: {exc}"]
    if not aliases:
        problems.append(f"{name_of(spc)}: no objects")
    synced: dict[str, set[str]] = {}
    for secret in spec.get("secretObjects") or []:
        keys = synced.setdefault(secret.get("secretName", ""), set())
        for item in secret.get("data") or []:
            if item.get("objectName") not in aliases:
                problems.append(f"{name_of(spc)}: secretObjects item {item} names no object")
            keys.add(item.get("key", ""))
    for deployment in deployments:
        pod = pod_template(deployment).get("spec") or {}
        mounted = any(
            (v.get("csi") or {}).get("volumeAttributes", {}).get("secretProviderClass")
            == spc["metadata"]["name"]
            for v in pod.get("volumes") or []
        )
        if not mounted:
            problems.append(
                f"{name_of(deployment)}: does not mount {name_of(spc)} (syncs on mount)"
            )
        for container in pod.get("containers") or []:
            for var in container.get("env") or []:
                ref = (var.get("valueFrom") or {}).get("secretKeyRef")
                if ref and ref.get("key") not in synced.get(ref.get("name", ""), set()):
                    problems.append(
                        f"{name_of(deployment)}: env {var['name']} reads a key not synced"
                    )
    return problems
