"""What the API server made of a Helm release, for scripts/cluster/test.sh (kubectl underneath).

inspect_release.py -n NS causes --release R [--all]
    Why the release's pods cannot run: ReplicaSets (StatefulSets, DaemonSets, Jobs) that cannot
    create pods (Pod Security, ResourceQuota, LimitRange: the ReplicaSets' ReplicaFailure
    condition, the FailedCreate events), pods
    the scheduler has refused for a while, Deployments past their progress deadline. Prints
    nothing when there is no such cause; --all adds pods that are not Ready and the release's
    warning events (for a helm time-out).

inspect_release.py -n NS check --release R --manifest FILE --step NAME --state FILE
    Every object of `helm get manifest` exists and holds every field as rendered (a field the
    server pruned, e.g. unknown to a CRD schema, fails), no object of the release is left over,
    every Deployment has rolled out, every pod of the release is Ready, no replica count is below
    its floor: the fixed count, else the autoscaler's minimum (HPA; KEDA's operator does not run
    here) and what it ran before the step, within the autoscaler's maximum. FILE (--state)
    keeps the counts between steps.

inspect_release.py value --chart DIR KEY.PATH
    The value at KEY.PATH in the chart's values.yaml, as JSON; nothing when it has no such key.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import time
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml

Obj = dict[str, Any]
INSTANCE = "app.kubernetes.io/instance"
UNSCHEDULABLE_FOR = 10  # seconds a pod may wait for the scheduler before it counts as refused
SETTLE = 60  # seconds for rollouts and autoscalers to settle after a helm step
POD_NAME = re.compile(r'pods "([a-z0-9.-]+)-[a-z0-9]{5}"')
QUANTITY = re.compile(r"^([+-]?[0-9.]+)(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$")
FACTORS = {
    "m": Decimal("0.001"),
    "k": Decimal(10) ** 3,
    "M": Decimal(10) ** 6,
    "G": Decimal(10) ** 9,
    "T": Decimal(10) ** 12,
    "P": Decimal(10) ** 15,
    "E": Decimal(10) ** 18,
    "Ki": Decimal(2) ** 10,
    "Mi": Decimal(2) ** 20,
    "Gi": Decimal(2) ** 30,
    "Ti": Decimal(2) ** 40,
    "Pi": Decimal(2) ** 50,
    "Ei": Decimal(2) ** 60,
}


def kubectl(*args: str) -> Obj:
    result = subprocess.run(
        ["kubectl", *args, "-o", "json"], capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise SystemExit(f"kubectl {' '.join(args)}: {result.stderr.strip()}")
    loaded: Obj = json.loads(result.stdout)
    return loaded


def items(namespace: str, kinds: str, selector: str | None = None) -> list[Obj]:
    args = ["get", kinds, "-n", namespace]
    if selector:
        args += ["-l", selector]
    found: list[Obj] = kubectl(*args).get("items", [])
    return found


def condition(obj: Obj, kind: str) -> Obj | None:
    for item in (obj.get("status") or {}).get("conditions") or []:
        if item.get("type") == kind:
            found: Obj = item
            return found
    return None


def age(timestamp: str | None) -> float:
    if not timestamp:
        return 0.0
    then = datetime.fromisoformat(timestamp.replace("Z", "+00:00"))
    return (datetime.now(UTC) - then).total_seconds()


def name_of(obj: Obj) -> str:
    return f"{obj.get('kind', '?').lower()}/{obj['metadata']['name']}"


# -- causes -------------------------------------------------------------------------------------
def causes(namespace: str, release: str, everything: bool) -> list[str]:
    selector = f"{INSTANCE}={release}"
    found: list[str] = []
    controllers = items(namespace, "replicasets,statefulsets,daemonsets,jobs", selector)
    for controller in controllers:
        failure = condition(controller, "ReplicaFailure")
        if failure and failure.get("status") == "True":
            reason, message = failure.get("reason"), failure.get("message")
            found.append(f"{name_of(controller)}: {reason}: {message}")
    names = {controller["metadata"]["name"] for controller in controllers}
    pods = items(namespace, "pods", selector)
    names |= {pod["metadata"]["name"] for pod in pods}
    events = items(namespace, "events")
    for event in events:
        involved = event.get("involvedObject") or {}
        if (
            event.get("type") == "Warning"
            and event.get("reason") == "FailedCreate"
            and involved.get("name") in names
        ):
            message = str(event.get("message")).removeprefix("Error creating: ")
            kind = str(involved.get("kind", "")).lower()
            found.append(f"{kind}/{involved['name']}: FailedCreate: {message}")
    for pod in pods:
        scheduled = condition(pod, "PodScheduled")
        if (
            scheduled
            and scheduled.get("status") == "False"
            and scheduled.get("reason") == "Unschedulable"
            and age(scheduled.get("lastTransitionTime")) > UNSCHEDULABLE_FOR
        ):
            found.append(f"{name_of(pod)}: Unschedulable: {scheduled.get('message')}")
    for deployment in items(namespace, "deployments", selector):
        progressing = condition(deployment, "Progressing")
        if progressing and progressing.get("reason") == "ProgressDeadlineExceeded":
            found.append(f"{name_of(deployment)}: {progressing.get('message')}")
    if everything:
        for pod in pods:
            ready = condition(pod, "Ready")
            if not ready or ready.get("status") != "True":
                phase = (pod.get("status") or {}).get("phase")
                found.append(f"{name_of(pod)}: not Ready (phase {phase}): {ready}")
        found += [
            f"{(event.get('involvedObject') or {}).get('kind')}/"
            f"{(event.get('involvedObject') or {}).get('name')}: "
            f"{event.get('reason')}: {event.get('message')}"
            for event in events
            if event.get("type") == "Warning"
            and str((event.get("involvedObject") or {}).get("name", "")).startswith(release)
            and (
                (event.get("involvedObject") or {}).get("kind") not in ("ReplicaSet", "Pod")
                or (event.get("involvedObject") or {}).get("name") in names
            )
        ]
    # One line per distinct cause: the same refusal repeats for every pod the ReplicaSet retries.
    return list(dict.fromkeys(POD_NAME.sub(r'pods "\1-*"', line) for line in found))


# -- check --------------------------------------------------------------------------------------
def quantity(value: str) -> Decimal | None:
    match = QUANTITY.match(value)
    if not match:
        return None
    return Decimal(match.group(1)) * FACTORS.get(match.group(2) or "", Decimal(1))


def same_scalar(rendered: Any, live: Any) -> bool:
    if rendered == live:
        return True
    if isinstance(rendered, str | int) and isinstance(live, str | int):
        left, right = quantity(str(rendered)), quantity(str(live))
        return left is not None and left == right
    return False


def differences(rendered: Any, live: Any, path: str = "") -> list[str]:
    """Where `live` does not hold what `rendered` says (live may hold more: defaults, status)."""
    if rendered in (None, {}, []) and live in (None, {}, []):
        return []
    if isinstance(rendered, dict):
        if not isinstance(live, dict):
            return [f"{path or '/'}: rendered a map, the server holds {live!r}"]
        found: list[str] = []
        for key, value in rendered.items():
            if key not in live and value not in (None, {}, []):
                found.append(f"{path}/{key}: missing on the server (pruned or dropped)")
            elif key in live:
                found += differences(value, live[key], f"{path}/{key}")
        return found
    if isinstance(rendered, list):
        if not isinstance(live, list) or len(live) != len(rendered):
            return [f"{path}: rendered {rendered!r}, the server holds {live!r}"]
        return [
            problem
            for index, (left, right) in enumerate(zip(rendered, live, strict=True))
            for problem in differences(left, right, f"{path}[{index}]")
        ]
    if not same_scalar(rendered, live):
        return [f"{path}: rendered {rendered!r}, the server holds {live!r}"]
    return []


def key_of(obj: Obj) -> tuple[str, str, str]:
    group = obj["apiVersion"].split("/")[0] if "/" in obj["apiVersion"] else ""
    return (group, obj["kind"], obj["metadata"]["name"])


def resource_of(obj: Obj) -> str:
    group = key_of(obj)[0]
    return f"{obj['kind'].lower()}.{group}" if group else obj["kind"].lower()


def bounds(deployment: Obj, rendered: list[Obj]) -> tuple[str, int, int] | None:
    """(kind, min, max) of the autoscaler that owns the Deployment's count, if any."""
    name = deployment["metadata"]["name"]
    for obj in rendered:
        spec = obj.get("spec") or {}
        target = spec.get("scaleTargetRef") or {}
        if target.get("kind") != "Deployment" or target.get("name") != name:
            continue
        if obj["kind"] == "HorizontalPodAutoscaler":
            return ("HPA", int(spec.get("minReplicas", 1)), int(spec["maxReplicas"]))
        if obj["kind"] == "ScaledObject":
            return ("KEDA", int(spec.get("minReplicaCount", 0)), int(spec["maxReplicaCount"]))
    return None


def floor(deployment: Obj, rendered: list[Obj], before: int | None) -> tuple[int, str]:
    if "replicas" in deployment["spec"]:
        count = int(deployment["spec"]["replicas"])
        return count, f"fixed {count}"
    scaler = bounds(deployment, rendered)
    if scaler is None:
        return 1, "default 1"
    kind, low, high = scaler
    kept = min(before, high) if before is not None else 0
    if kind == "KEDA":  # no KEDA operator here: nothing raises the count to its minimum
        return max(kept, 1), f"KEDA {low}-{high} (minimum not enforced here), ran {before}"
    return max(low, kept), f"HPA {low}-{high}, ran {before}"


def rollout_problems(
    namespace: str, deployment: Obj, rendered: list[Obj], before: int | None
) -> list[str]:
    name = deployment["metadata"]["name"]
    live = kubectl("get", "deployment", name, "-n", namespace)
    spec, status = live["spec"], live.get("status") or {}
    replicas = int(spec.get("replicas", 1))
    problems = [
        f"deployment/{name}: {field} {status.get(field, 0)} of {replicas}"
        for field in ("updatedReplicas", "readyReplicas", "availableReplicas")
        if int(status.get(field, 0)) != replicas
    ]
    if status.get("observedGeneration", 0) < live["metadata"]["generation"]:
        problems.append(f"deployment/{name}: generation not observed yet")
    selector = ",".join(f"{k}={v}" for k, v in spec["selector"]["matchLabels"].items())
    pods = [
        pod
        for pod in items(namespace, "pods", selector)
        if not pod["metadata"].get("deletionTimestamp")
    ]
    not_ready = [
        pod["metadata"]["name"]
        for pod in pods
        if (condition(pod, "Ready") or {}).get("status") != "True"
    ]
    if not_ready or len(pods) != replicas:
        problems.append(f"deployment/{name}: {len(pods) - len(not_ready)}/{replicas} pods Ready")
    least, why = floor(deployment, rendered, before)
    if replicas < least:
        problems.append(f"deployment/{name}: {replicas} replicas, below its floor {least} ({why})")
    return problems


def check(namespace: str, release: str, manifest: Path, step: str, state: Path) -> int:
    rendered = [doc for doc in yaml.safe_load_all(manifest.read_text()) if doc]
    problems: list[str] = []
    on_server = kubectl("get", "-f", str(manifest)).get("items", [])
    live_objects = {key_of(obj): obj for obj in on_server}
    for obj in rendered:
        live = live_objects.get(key_of(obj))
        if live is None:
            problems.append(f"{name_of(obj)}: not on the server")
            continue
        fields = {key: obj[key] for key in obj if key not in ("apiVersion", "kind", "status")}
        problems += [f"{name_of(obj)}: {problem}" for problem in differences(fields, live)]
    kinds = ",".join(sorted({resource_of(obj) for obj in rendered}))
    expected = {key_of(obj) for obj in rendered}
    problems += [
        f"{name_of(obj)}: labelled with the release but not in its manifest"
        for obj in items(namespace, kinds, f"{INSTANCE}={release}")
        if key_of(obj) not in expected and not (obj.get("metadata") or {}).get("ownerReferences")
    ]
    previous: dict[str, int] = json.loads(state.read_text()) if state.exists() else {}
    deployments = [obj for obj in rendered if obj["kind"] == "Deployment"]
    deadline = time.monotonic() + SETTLE
    while True:
        rollout = [
            problem
            for deployment in deployments
            for problem in rollout_problems(
                namespace, deployment, rendered, previous.get(deployment["metadata"]["name"])
            )
        ]
        if not rollout or time.monotonic() > deadline:
            break
        time.sleep(1)
    problems += rollout
    problems += [
        f"{name_of(pod)}: not Ready ({(pod.get('status') or {}).get('phase')})"
        for pod in items(namespace, "pods", f"{INSTANCE}={release}")
        if not pod["metadata"].get("deletionTimestamp")
        and (pod.get("status") or {}).get("phase") != "Succeeded"
        and (condition(pod, "Ready") or {}).get("status") != "True"
    ]
    counts = {
        d["metadata"]["name"]: int(
            kubectl("get", "deployment", d["metadata"]["name"], "-n", namespace)["spec"]["replicas"]
        )
        for d in deployments
    }
    state.write_text(json.dumps(counts))
    if problems:
        print(f"    {release} after {step}: {len(problems)} problem(s):")
        print("\n".join(f"      - {problem}" for problem in problems))
        return 1
    summary = ", ".join(f"{name} {count} Ready" for name, count in counts.items()) or "no pods"
    print(f"    {release} after {step}: {len(rendered)} objects as rendered; {summary}")
    return 0


def value(chart: Path, path: str) -> str:
    """The chart's default value at a dotted path, as JSON, or "" when it has none."""
    found: Any = yaml.safe_load((chart / "values.yaml").read_text()) or {}
    for key in path.split("."):
        if not isinstance(found, dict) or key not in found:
            return ""
        found = found[key]
    return json.dumps(found)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("-n", "--namespace", default="dronedelivery")
    commands = parser.add_subparsers(dest="command", required=True)
    cause = commands.add_parser("causes")
    cause.add_argument("--release", required=True)
    cause.add_argument("--all", action="store_true")
    verify = commands.add_parser("check")
    verify.add_argument("--release", required=True)
    verify.add_argument("--manifest", type=Path, required=True)
    verify.add_argument("--step", required=True)
    verify.add_argument("--state", type=Path, required=True)
    default = commands.add_parser("value")
    default.add_argument("--chart", type=Path, required=True)
    default.add_argument("path")
    args = parser.parse_args()
    if args.command == "causes":
        found = causes(args.namespace, args.release, args.all)
        print("\n".join(f"      - {line}" for line in found))
        return 0
    if args.command == "check":
        return check(args.namespace, args.release, args.manifest, args.step, args.state)
    print(value(args.chart, args.path))
    return 0


if __name__ == "__main__":
    sys.exit(main())
