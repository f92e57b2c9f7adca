#!/usr/bin/env bash
# Lint, render and validate every Helm chart with every values file, offline.
#
#   scripts/charts.sh            # every service
#   scripts/charts.sh workflow   # one or more of them
#
# For each service chart: `helm dependency update` (the library is a file:// dependency, so no
# network), then for each of values.yaml, values-dev.yaml and values-prod.yaml: `helm lint --strict`,
# `helm template` into reports/charts/<service>-<env>.yaml, and `kubernetes-validate --strict`
# (Kubernetes JSON schemas, offline) over every rendered core resource. The custom resources
# kubernetes-validate has no schema for are listed in CRD_KINDS and set aside (their shape is
# checked by tests/deploy); any other kind without a schema fails the run. The cluster manifests in
# infra/k8s are validated the same way, and the values schemas must match charts/values_schema.py.
# Exits non-zero on the first failing step of any chart (all charts are still reported).
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
HELM="${HELM:-$ROOT/.tools/bin/helm}"
[ -x "$HELM" ] || HELM="$(command -v helm || true)"
[ -n "$HELM" ] || { echo "charts: helm not found (run make setup)" >&2; exit 2; }
UV="${UV:-uv}"
NAMESPACE="${NAMESPACE:-dronedelivery}"
KUBE_VERSION="${KUBE_VERSION:-1.37.0}"
OUT="$ROOT/reports/charts"
ALL_SERVICES=(ingestion delivery package dronescheduler workflow simulator notifier webapp)
SERVICES=("${@:-${ALL_SERVICES[@]}}")
# Custom resources (apiVersion kind) that kubernetes-validate has no schema for.
CRD_KINDS=(
  "keda.sh/v1alpha1 ScaledObject"
  "keda.sh/v1alpha1 TriggerAuthentication"
  "gateway.networking.k8s.io/v1 HTTPRoute"
  "alb.networking.azure.io/v1 RoutePolicy"
  "gateway.networking.k8s.io/v1 Gateway"
  "secrets-store.csi.x-k8s.io/v1 SecretProviderClass"
)

failures=()
step() { printf '==> %s\n' "$*"; }
fail() { printf 'FAIL: %s\n' "$*" >&2; failures+=("$*"); }

rm -rf "$OUT" && mkdir -p "$OUT/core"

step "values schemas match charts/values_schema.py"
"$UV" run --locked python charts/values_schema.py --check || fail "values schemas are stale"

step "lint the library chart"
"$HELM" lint --strict charts/dronedelivery-lib >/dev/null || fail "helm lint charts/dronedelivery-lib"

for svc in "${SERVICES[@]}"; do
  chart="charts/$svc"
  [ -f "$chart/Chart.yaml" ] || { fail "$chart: no such chart"; continue; }
  step "$svc: helm dependency update"
  if ! "$HELM" dependency update --skip-refresh "$chart" >/dev/null; then
    fail "$svc: helm dependency update"; continue
  fi
  for values in values.yaml values-dev.yaml values-prod.yaml; do
    env="${values#values}"; env="${env#-}"; env="${env%.yaml}"; env="${env:-default}"
    rendered="$OUT/$svc-$env.yaml"
    step "$svc ($values): lint, template"
    if ! "$HELM" lint --strict --quiet "$chart" -n "$NAMESPACE" -f "$chart/$values" >/dev/null; then
      "$HELM" lint --strict "$chart" -n "$NAMESPACE" -f "$chart/$values" >&2 || true
      fail "$svc ($values): helm lint --strict"; continue
    fi
    if ! "$HELM" template "$svc" "$chart" -n "$NAMESPACE" --kube-version "$KUBE_VERSION" \
        -f "$chart/$values" >"$rendered"; then
      fail "$svc ($values): helm template"; continue
    fi
  done
done

step "split rendered output: core resources vs. ${#CRD_KINDS[@]} CRD kinds without schemas"
printf '%s\n' "${CRD_KINDS[@]}" >"$OUT/crd-kinds.txt"
"$UV" run --locked python - "$OUT" infra/k8s <<'PY' || fail "splitting rendered manifests"
import sys
from pathlib import Path

import yaml

out, infra = Path(sys.argv[1]), Path(sys.argv[2])
crd_kinds = {tuple(line.split()) for line in (out / "crd-kinds.txt").read_text().splitlines()}
sources = sorted(out.glob("*.yaml")) + sorted(infra.rglob("*.yaml"))
for source in sources:
    if source.name == "kustomization.yaml":
        continue
    docs = [doc for doc in yaml.safe_load_all(source.read_text()) if doc]
    core = [d for d in docs if (d.get("apiVersion"), d.get("kind")) not in crd_kinds]
    skipped = len(docs) - len(core)
    if source.parent == out:
        name = source.stem
    else:
        name = "infra-" + "-".join(source.relative_to(infra).with_suffix("").parts)
    (out / "core" / f"{name}.yaml").write_text(yaml.safe_dump_all(core, sort_keys=False))
    print(f"    {name}: {len(core)} core, {skipped} custom resources set aside")
PY

step "kubernetes-validate --strict (Kubernetes $KUBE_VERSION schemas)"
if compgen -G "$OUT/core/*.yaml" >/dev/null; then
  report="$("$UV" run --locked kubernetes-validate --strict --quiet -k "$KUBE_VERSION" "$OUT"/core/*.yaml 2>&1)"
  status=$?
  [ -n "$report" ] && printf '%s\n' "$report"
  [ "$status" -eq 0 ] || fail "kubernetes-validate reported invalid resources"
  # A kind without a schema is only a warning to kubernetes-validate: here it is an error, since
  # every custom resource the charts use is listed in CRD_KINDS above.
  if grep -q '^WARN' <<<"$report"; then fail "resources without a schema that are not in CRD_KINDS"; fi
fi

if command -v kubectl >/dev/null 2>&1; then
  for cluster in infra/gitops/clusters/*/; do
    step "kubectl kustomize $cluster"
    kubectl kustomize "$cluster" >/dev/null || fail "kustomize build $cluster"
  done
  for dir in infra/gitops/infrastructure infra/gitops/apps/*/; do
    [ -f "$dir/kustomization.yaml" ] || continue
    step "kubectl kustomize $dir"
    kubectl kustomize "$dir" >/dev/null || fail "kustomize build $dir"
  done
else
  step "kubectl not found: kustomize builds skipped (tests/deploy checks the resource paths)"
fi

if [ "${#failures[@]}" -gt 0 ]; then
  printf '\ncharts: %d failure(s):\n' "${#failures[@]}" >&2
  printf '  - %s\n' "${failures[@]}" >&2
  exit 1
fi
printf '\ncharts: OK (%d chart(s) x 3 values files; rendered output in %s)\n' "${#SERVICES[@]}" "${OUT#"$ROOT"/}"
