#!/usr/bin/env bash
# Builds, once, what `make cluster-test` runs, from the Go module proxy, into a cache outside the
# repository (scripts/cluster/versions.sh: one directory per component and version):
#
#   kubernetes-<v>/bin   kube-apiserver, kube-controller-manager, kube-scheduler, kubectl
#   etcd-<v>/bin         etcd
#   kwok-<v>/bin         kwok (simulates nodes and pods: no kubelet, no container runtime)
#   crds-.../            the CRDs the charts use, as their projects ship them in their Go modules
#
# Kubernetes is built from k8s.io/kubernetes in a throwaway Go module generated here: its go.mod
# maps every staging module (the `=> ./staging/...` replace lines of Kubernetes' own go.mod) to the
# published k8s.io/<name> v0.<minor>.<patch>, the version stamps go in through -ldflags (the API
# server's compatibility version and helm's kubeVersion checks read them), and one `go build` makes
# the four commands so they share their packages. Cold: the longest step of the whole CI run.
# A finished component is marked `.complete`; an interrupted build leaves nothing that counts.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=versions.sh
source "$HERE/versions.sh"

command -v go >/dev/null 2>&1 || { echo "cluster: Go is missing (needed to build the control plane)" >&2; exit 2; }
export CGO_ENABLED=0 GOTOOLCHAIN=local GOFLAGS="-mod=mod -buildvcs=false"
mkdir -p "$CLUSTER_CACHE"

say() { printf '==> %s\n' "$*"; }
elapsed() { local s=$(( $(date +%s) - $1 )); printf '%dm%02ds' $((s / 60)) $((s % 60)); }

# run_logged LABEL LOG CMD...: runs CMD with its output in LOG, printing every 30 s how long it has
# been running and how many modules it downloaded and packages it compiled (`go build -v`) so far;
# the log's tail on failure.
run_logged() {
  local label="$1" log="$2"; shift 2
  local start; start=$(date +%s)
  "$@" >"$log" 2>&1 &
  local pid=$!
  while kill -0 "$pid" 2>/dev/null; do
    for _ in $(seq 30); do kill -0 "$pid" 2>/dev/null || break; sleep 1; done
    if kill -0 "$pid" 2>/dev/null; then
      local msg downloads packages
      msg="$label: $(elapsed "$start") so far"
      downloads=$(grep -c '^go: downloading' "$log" || true)
      packages=$(grep -cv '^go: ' "$log" || true)
      [ "$downloads" -eq 0 ] || msg+=", $downloads modules downloaded"
      [ "$packages" -eq 0 ] || msg+=", $packages packages compiled"
      say "$msg"
    fi
  done
  if ! wait "$pid"; then
    printf 'cluster: %s failed after %s; last lines of %s:\n' "$label" "$(elapsed "$start")" "$log" >&2
    tail -n 40 "$log" >&2
    return 1
  fi
  say "$label: done in $(elapsed "$start")"
}

# new_module DIR GO_DIRECTIVE: an empty throwaway module to `go get -tool` commands into.
new_module() {
  mkdir -p "$1"
  printf 'module dronedelivery.local/cluster-build\n\ngo %s\n' "$2" >"$1/go.mod"
}

# module_file MODULE@VERSION FIELD: a field of `go mod download -json` (Dir, GoMod, ...).
module_file() {
  (cd "$CLUSTER_CACHE" && go mod download -json "$1") \
    | python3 -c 'import json,sys; d=json.load(sys.stdin); sys.exit(d.get("Error")) if "Error" in d else print(d[sys.argv[1]])' "$2"
}

build_kubernetes() {
  [ -f "$KUBE_DIR/.complete" ] && return 0
  local start; start=$(date +%s)
  local v="${K8S_VERSION#v}"; local major="${v%%.*}" minor; minor="${v#*.}"; minor="${minor%%.*}"
  local staging="v0.${v#*.}"
  local work="$KUBE_DIR.build"
  rm -rf "$work" && new_module "$work/src" 1.26.0
  say "kubernetes $K8S_VERSION: generating the build module (staging modules at $staging)"
  local kube_mod; kube_mod="$(module_file "k8s.io/kubernetes@$K8S_VERSION" GoMod)"
  {
    printf '\ngodebug default=go1.26\n\nrequire k8s.io/kubernetes %s\n\nreplace (\n' "$K8S_VERSION"
    awk -v ver="$staging" '$2 == "=>" && $3 ~ /^\.\/staging\// { printf "\t%s => %s %s\n", $1, $1, ver }' "$kube_mod"
    printf ')\n'
  } >>"$work/src/go.mod"
  local count; count=$(grep -c " => .* $staging\$" "$work/src/go.mod")
  [ "$count" -gt 20 ] || { echo "cluster: only $count staging modules found in $kube_mod" >&2; return 1; }
  local cmds=(kube-apiserver kube-controller-manager kube-scheduler kubectl)
  local pkgs=("${cmds[@]/#/k8s.io/kubernetes/cmd/}")
  (cd "$work/src" && run_logged "kubernetes $K8S_VERSION: go get ($count staging modules replaced)" \
    "$work/get.log" go get -tool "${pkgs[@]}")
  local ldflags="-s -w" pkg
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldflags+=" -X $pkg.gitVersion=$K8S_VERSION -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor"
    ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
  done
  mkdir -p "$work/bin"
  (cd "$work/src" && run_logged "kubernetes $K8S_VERSION: go build ${cmds[*]}" "$work/build.log" \
    go build -v -trimpath -ldflags="$ldflags" -o "$work/bin/" "${pkgs[@]}")
  "$work/bin/kube-apiserver" --version | grep -qx "Kubernetes $K8S_VERSION" \
    || { echo "cluster: kube-apiserver does not report $K8S_VERSION" >&2; return 1; }
  finish "$work" "$KUBE_DIR"
  say "kubernetes $K8S_VERSION: built in $(elapsed "$start")"
}

# build_tool DEST VERSION LABEL GO_DIRECTIVE PACKAGE: one command, `go get -tool` + `go build`.
build_tool() {
  local dest="$1" version="$2" label="$3" godirective="$4" pkg="$5"
  [ -f "$dest/.complete" ] && return 0
  local work="$dest.build"
  rm -rf "$work" && new_module "$work/src" "$godirective" && mkdir -p "$work/bin"
  (cd "$work/src" && run_logged "$label $version: go get" "$work/get.log" go get -tool "$pkg@$version")
  (cd "$work/src" && run_logged "$label $version: go build" "$work/build.log" \
    go build -v -trimpath -ldflags="-s -w" -o "$work/bin/$label" "$pkg")
  finish "$work" "$dest"
}

# finish WORK DEST: keep the binaries (and nothing else of the build) as DEST.
finish() {
  local work="$1" dest="$2"
  rm -rf "$dest" && mkdir -p "$dest"
  mv "$work/bin" "$dest/bin"
  chmod -R u+w "$work" 2>/dev/null || true
  rm -rf "$work"
  touch "$dest/.complete"
}

# The CRDs as released in config/crd of the modules that define them: Gateway API (standard channel:
# GatewayClass, Gateway, HTTPRoute, ...), KEDA (ScaledObject, TriggerAuthentication, ...), Secrets
# Store CSI driver (SecretProviderClass). Full OpenAPI schemas and CEL rules, enforced on apply.
fetch_crds() {
  [ -f "$CRD_DIR/.complete" ] && return 0
  say "CRDs: Gateway API $GATEWAY_API_VERSION, KEDA $KEDA_VERSION, Secrets Store CSI $SECRETS_STORE_CSI_VERSION"
  local work="$CRD_DIR.build" dir
  rm -rf "$work" && mkdir -p "$work"
  dir="$(module_file "sigs.k8s.io/gateway-api@$GATEWAY_API_VERSION" Dir)"
  cp "$dir"/config/crd/standard/gateway.networking.k8s.io_*.yaml "$work/"
  dir="$(module_file "github.com/kedacore/keda/v2@$KEDA_VERSION" Dir)"
  cp "$dir"/config/crd/bases/keda.sh_*.yaml "$work/"
  dir="$(module_file "sigs.k8s.io/secrets-store-csi-driver@$SECRETS_STORE_CSI_VERSION" Dir)"
  cp "$dir"/config/crd/bases/secrets-store.csi.x-k8s.io_*.yaml "$work/"
  chmod u+w "$work"/*.yaml
  rm -rf "$CRD_DIR" && mv "$work" "$CRD_DIR" && touch "$CRD_DIR/.complete"
}

# One build at a time per cache (a second `make cluster-test` waits for the first one's build).
exec 9>"$CLUSTER_CACHE/.lock"
if ! flock -n 9; then
  say "another build into $CLUSTER_CACHE is running: waiting for it"
  flock 9
fi
start=$(date +%s)
build_kubernetes
build_tool "$ETCD_DIR" "$ETCD_VERSION" etcd 1.26.0 go.etcd.io/etcd/server/v3
build_tool "$KWOK_DIR" "$KWOK_VERSION" kwok 1.26.0 sigs.k8s.io/kwok/cmd/kwok
fetch_crds
say "control plane binaries and CRDs in $CLUSTER_CACHE (built or checked in $(elapsed "$start"))"
