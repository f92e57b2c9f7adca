#!/usr/bin/env bash
# `make cluster-test`: every chart under charts/ installed into a real Kubernetes API server.
#
# A throwaway control plane on loopback (etcd, kube-apiserver with PodSecurity, LimitRanger and
# ResourceQuota admission, kube-controller-manager, kube-scheduler) with three kwok nodes in three
# zones (kwok fakes the kubelet: pods are scheduled, admitted and marked Ready, no image is pulled,
# no container runs). On it:
#
#   1. the CRDs the charts use (Gateway API, KEDA, Secrets Store CSI; a stand-in for Application
#      Gateway for Containers' RoutePolicy, scripts/cluster/crds) and infra/k8s;
#   2. a mutation run per chart: the chart with `runAsNonRoot: false` (a post-renderer) must be
#      refused by Pod Security admission, and the refusal must be reported as the cause;
#   3. helm install --wait (values-dev), helm upgrade --wait (values-prod), helm rollback --wait of
#      every chart; after each step every object of the release exists as rendered, every pod is
#      Ready and no Deployment runs fewer replicas than its floor (see inspect_release.py);
#   4. for every chart with an autoscaler: installed with it off, then upgraded with it on (the
#      hand-over must not lower the running replica count), then upgraded to values-prod;
#   5. egress `except` ranges spread over two CIDRs (the API server refuses an except range
#      outside its CIDR, which `helm template` lets through).
#
# A release whose pods cannot be created (Pod Security, quota, LimitRange) or scheduled fails as
# soon as the cause shows in the ReplicaSets' conditions and events, with that cause printed, not
# after helm's time-out. Everything runs in a temporary directory and stops on exit.
#
#   scripts/cluster/test.sh              # build (cached) and test every chart
#   scripts/cluster/test.sh workflow     # only these charts
#   CLUSTER_KEEP=1 scripts/cluster/test.sh   # keep the temporary directory (logs, kubeconfig)
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
# shellcheck source=versions.sh
source "$HERE/versions.sh"
HELM="${HELM:-$ROOT/.tools/bin/helm}"
[ -x "$HELM" ] || { echo "cluster: helm not found at $HELM (run make setup)" >&2; exit 2; }
UV="${UV:-uv}"
NAMESPACE=dronedelivery
TIMEOUT="${CLUSTER_TEST_TIMEOUT:-180}"   # seconds for one helm operation

say() { printf '==> %s\n' "$*"; }
die() { printf 'cluster-test: FAIL: %s\n' "$*" >&2; exit 1; }
for tool in openssl python3; do
  command -v "$tool" >/dev/null 2>&1 || die "$tool is missing (apt-get install -y $tool)"
done

START=$(date +%s)
bash "$HERE/build.sh"
BUILT=$(date +%s)
export PATH="$KUBE_DIR/bin:$ETCD_DIR/bin:$KWOK_DIR/bin:$PATH"

# --- the control plane -------------------------------------------------------------------------
WORK="$(mktemp -d "${TMPDIR:-/tmp}/dronedelivery-cluster.XXXXXX")"
LOGS="$WORK/logs" PKI="$WORK/pki"
mkdir -p "$LOGS" "$PKI"
PIDS=() NAMES=()
cleanup() {
  local status=$? i
  # A control-plane process that died on its own is the likely cause of a failure: show its log.
  for i in "${!PIDS[@]}"; do
    if ! kill -0 "${PIDS[$i]}" 2>/dev/null; then
      printf -- '--- %s exited; last lines of its log:\n' "${NAMES[$i]}" >&2
      tail -n 20 "$LOGS/${NAMES[$i]}.log" >&2
    fi
  done
  for i in "${!PIDS[@]}"; do kill "${PIDS[$i]}" 2>/dev/null || true; done
  for i in "${!PIDS[@]}"; do
    for _ in $(seq 100); do kill -0 "${PIDS[$i]}" 2>/dev/null || break; sleep 0.1; done
    kill -9 "${PIDS[$i]}" 2>/dev/null || true
  done
  if [ "$status" -ne 0 ] && [ -z "${CLUSTER_KEEP:-}" ]; then
    echo "cluster-test: run with CLUSTER_KEEP=1 to keep the control plane's logs" >&2
  fi
  if [ -n "${CLUSTER_KEEP:-}" ]; then
    echo "cluster-test: kept $WORK" >&2
  else
    rm -rf "$WORK"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

read -r ETCD_PORT ETCD_PEER_PORT API_PORT < <(python3 - <<'PY'
import socket

sockets = [socket.socket() for _ in range(3)]
for s in sockets:
    s.bind(("127.0.0.1", 0))
print(*(s.getsockname()[1] for s in sockets))
PY
)

say "certificates and service-account keys (openssl, in $WORK)"
ec() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }
ec "$PKI/ca.key"
openssl req -x509 -new -key "$PKI/ca.key" -subj "/CN=dronedelivery-cluster-test-ca" -days 2 \
  -out "$PKI/ca.crt" 2>/dev/null
# issue NAME SUBJECT EXTENSIONS: a certificate signed by the throwaway CA.
issue() {
  ec "$PKI/$1.key"
  openssl req -new -key "$PKI/$1.key" -subj "$2" -out "$PKI/$1.csr" 2>/dev/null
  openssl x509 -req -in "$PKI/$1.csr" -CA "$PKI/ca.crt" -CAkey "$PKI/ca.key" -CAcreateserial \
    -days 2 -out "$PKI/$1.crt" -extfile <(printf 'keyUsage=critical,digitalSignature\n%s\n' "$3") 2>/dev/null
}
issue apiserver "/CN=kube-apiserver" "extendedKeyUsage=serverAuth
subjectAltName=IP:127.0.0.1,DNS:localhost,IP:10.96.0.1,DNS:kubernetes.default.svc"
issue admin "/O=system:masters/CN=cluster-test-admin" "extendedKeyUsage=clientAuth"
issue controller-manager "/CN=system:kube-controller-manager" "extendedKeyUsage=clientAuth"
issue scheduler "/CN=system:kube-scheduler" "extendedKeyUsage=clientAuth"
issue kwok "/O=system:masters/CN=kwok" "extendedKeyUsage=clientAuth"
ec "$PKI/sa.key"
openssl pkey -in "$PKI/sa.key" -pubout -out "$PKI/sa.pub"

kubeconfig() {
  cat >"$WORK/$1.kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
  - name: cluster-test
    cluster: {server: "https://127.0.0.1:$API_PORT", certificate-authority: "$PKI/ca.crt"}
users:
  - name: $1
    user: {client-certificate: "$PKI/$1.crt", client-key: "$PKI/$1.key"}
contexts:
  - name: cluster-test
    context: {cluster: cluster-test, user: $1}
current-context: cluster-test
EOF
}
for user in admin controller-manager scheduler kwok; do kubeconfig "$user"; done
export KUBECONFIG="$WORK/admin.kubeconfig"

# start NAME COMMAND...: a background process, logged to $LOGS/NAME.log, stopped on exit.
start() {
  local name="$1"; shift
  "$@" >"$LOGS/$name.log" 2>&1 &
  PIDS+=("$!") NAMES+=("$name")
  disown "$!"   # stopped by cleanup, which reports nothing of how
}
# await WHAT SECONDS COMMAND...: retries COMMAND until it succeeds; fails (and says why) when any
# started process has exited or time is up.
await() {
  local what="$1" seconds="$2" deadline pid; shift 2
  deadline=$(( $(date +%s) + seconds ))
  until "$@" >/dev/null 2>&1; do
    for pid in "${PIDS[@]}"; do kill -0 "$pid" 2>/dev/null || die "a control-plane process exited while waiting for $what"; done
    [ "$(date +%s)" -lt "$deadline" ] || die "$what: not ready after ${seconds}s"
    sleep 0.5
  done
}

say "starting etcd $ETCD_VERSION, kube-apiserver $K8S_VERSION (127.0.0.1:$API_PORT)"
start etcd etcd --name cluster-test --data-dir "$WORK/etcd" --unsafe-no-fsync \
  --listen-client-urls "http://127.0.0.1:$ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
  --listen-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
  --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
  --initial-cluster "cluster-test=http://127.0.0.1:$ETCD_PEER_PORT" --log-level warn
start kube-apiserver kube-apiserver --bind-address 127.0.0.1 --advertise-address 127.0.0.1 \
  --secure-port "$API_PORT" --etcd-servers "http://127.0.0.1:$ETCD_PORT" --cert-dir "$WORK/apiserver" \
  --tls-cert-file "$PKI/apiserver.crt" --tls-private-key-file "$PKI/apiserver.key" \
  --client-ca-file "$PKI/ca.crt" --authorization-mode Node,RBAC \
  --service-account-issuer https://kubernetes.default.svc.cluster.local \
  --service-account-key-file "$PKI/sa.pub" --service-account-signing-key-file "$PKI/sa.key" \
  --service-cluster-ip-range 10.96.0.0/16 --endpoint-reconciler-type none \
  --allow-privileged=false --profiling=false \
  --enable-admission-plugins NamespaceLifecycle,LimitRanger,ServiceAccount,PodSecurity,ResourceQuota,DefaultTolerationSeconds,NodeRestriction,Priority
await "kube-apiserver /readyz" 60 kubectl get --raw /readyz

say "starting kube-controller-manager, kube-scheduler, kwok $KWOK_VERSION"
start kube-controller-manager kube-controller-manager --kubeconfig "$WORK/controller-manager.kubeconfig" \
  --authentication-kubeconfig "$WORK/controller-manager.kubeconfig" \
  --authorization-kubeconfig "$WORK/controller-manager.kubeconfig" \
  --bind-address 127.0.0.1 --secure-port 0 --leader-elect=false --use-service-account-credentials \
  --service-account-private-key-file "$PKI/sa.key" --root-ca-file "$PKI/ca.crt" \
  --horizontal-pod-autoscaler-sync-period 5s --profiling=false
start kube-scheduler kube-scheduler --kubeconfig "$WORK/scheduler.kubeconfig" \
  --authentication-kubeconfig "$WORK/scheduler.kubeconfig" \
  --authorization-kubeconfig "$WORK/scheduler.kubeconfig" \
  --bind-address 127.0.0.1 --secure-port 0 --leader-elect=false --profiling=false
# HOME: kwok would also read ~/.kwok/kwok.yaml (stages) when there is one.
start kwok env HOME="$WORK/kwok-home" kwok --kubeconfig "$WORK/kwok.kubeconfig" --manage-all-nodes=false \
  --manage-nodes-with-annotation-selector kwok.x-k8s.io/node=fake \
  --cidr 10.244.0.0/16 --node-ip 10.0.0.1 --node-lease-duration-seconds 40

# Three fake nodes in three zones, like an AKS node pool spread over availability zones (the
# charts' topology spread constraints need the zone label; prod's DoNotSchedule is checked here).
for i in 1 2 3; do
  cat <<EOF
apiVersion: v1
kind: Node
metadata:
  name: kwok-node-$i
  annotations: {kwok.x-k8s.io/node: fake, node.alpha.kubernetes.io/ttl: "0"}
  labels:
    kubernetes.io/hostname: kwok-node-$i
    kubernetes.io/os: linux
    kubernetes.io/arch: amd64
    topology.kubernetes.io/zone: eastus2-$i
    type: kwok
status:
  allocatable: {cpu: "16", memory: 64Gi, pods: "110"}
  capacity: {cpu: "16", memory: 64Gi, pods: "110"}
---
EOF
done >"$WORK/nodes.yaml"
kubectl apply -f "$WORK/nodes.yaml" >/dev/null
await "three Ready kwok nodes" 60 kubectl wait --for condition=Ready node --all --timeout 1s
await "the default ServiceAccount" 60 kubectl -n default get serviceaccount default
say "control plane up in $(( $(date +%s) - BUILT ))s: $(kubectl get nodes --no-headers | wc -l) Ready nodes"

# --- cluster manifests -------------------------------------------------------------------------
say "CRDs: $(ls "$CRD_DIR"/*.yaml | wc -l) files from Gateway API $GATEWAY_API_VERSION, KEDA $KEDA_VERSION, Secrets Store CSI $SECRETS_STORE_CSI_VERSION"
kubectl apply --server-side -f "$CRD_DIR" >/dev/null
say "CRD stand-ins: $(cd "$HERE/crds" && ls -- *.yaml | tr '\n' ' ')(scripts/cluster/crds)"
kubectl apply --server-side -f "$HERE/crds" >/dev/null
kubectl wait --for condition=Established crd --all --timeout 60s >/dev/null
say "infra/k8s (kubectl apply -k)"
kubectl apply -k "$ROOT/infra/k8s"
await "the $NAMESPACE ServiceAccount" 30 kubectl -n "$NAMESPACE" get serviceaccount default

# --- charts --------------------------------------------------------------------------------------
export HELM_CACHE_HOME="$WORK/helm/cache" HELM_CONFIG_HOME="$WORK/helm/config" HELM_DATA_HOME="$WORK/helm/data"
export HELM_PLUGINS="$HERE/helm-plugins"   # run-as-root: the mutation run's post-renderer
cp -r "$ROOT/charts" "$WORK/charts"
rm -rf "$WORK"/charts/*/charts "$WORK"/charts/*/Chart.lock
CHARTS=()
for chart in "$WORK"/charts/*/; do
  chart="${chart%/}"
  [ -f "$chart/Chart.yaml" ] || continue
  grep -Eq '^type:[[:space:]]*library' "$chart/Chart.yaml" && continue
  name="$(basename "$chart")"
  if [ "$#" -gt 0 ] && ! printf '%s\n' "$@" | grep -qx "$name"; then continue; fi
  "$HELM" dependency update --skip-refresh "$chart" >/dev/null
  CHARTS+=("$name")
done
[ "${#CHARTS[@]}" -gt 0 ] || die "no application chart under charts/ ${*:+matching $*}"
say "charts: ${CHARTS[*]}"

INSPECT=("$UV" run --locked --no-sync python "$HERE/inspect_release.py" --namespace "$NAMESPACE")
# values CHART ENV: the -f arguments for an environment (values.yaml alone when there is no file).
values() {
  local file="$WORK/charts/$1/values-$2.yaml"
  if [ -f "$file" ]; then printf -- '-f\n%s\n' "$file"; fi
}

# helm_op RELEASE ACTION ARGS...: a helm operation with --wait, watched: when the release's pods
# cannot be created or scheduled, the cause is printed (and kept in CAUSES) and the operation
# stopped (status 3); any other failure prints helm's output and the namespace's state (status 1).
CAUSES=""
helm_op() {
  local release="$1" action="$2" log="$LOGS/helm-$1-$2.log" pid; shift 2
  CAUSES=""
  "$HELM" "$action" "$@" -n "$NAMESPACE" --wait --timeout "${TIMEOUT}s" >"$log" 2>"$log.stderr" &
  pid=$!
  while kill -0 "$pid" 2>/dev/null; do
    sleep 1
    CAUSES="$("${INSPECT[@]}" causes --release "$release")" || return 1
    if [ -n "$CAUSES" ]; then
      kill "$pid" 2>/dev/null || true
      wait "$pid" 2>/dev/null || true
      printf '    helm %s %s: stopped, the cluster refuses its pods:\n%s\n' "$action" "$release" "$CAUSES"
      return 3
    fi
  done
  if ! wait "$pid"; then
    printf '    helm %s %s failed:\n' "$action" "$release"
    sed 's/^/      /' "$log.stderr" "$log"
    "${INSPECT[@]}" causes --release "$release" --all || true
    return 1
  fi
  # What the API server warned about (deprecations, Pod Security warn mode, unknown fields).
  sed 's/^/    helm: /' "$log.stderr"
}

# verify RELEASE STEP: what the API server holds matches the release (see inspect.py check).
verify() {
  "$HELM" get manifest "$1" -n "$NAMESPACE" >"$WORK/$1.manifest.yaml"
  "${INSPECT[@]}" check --release "$1" --manifest "$WORK/$1.manifest.yaml" --step "$2" \
    --state "$WORK/$1.replicas.json" || die "$1 after $2: see above"
}

# uninstall RELEASE: helm uninstall, then wait until the garbage collector has removed the
# release's ReplicaSets and pods too (so their conditions and events cannot be read as the next
# install's).
uninstall() {
  "$HELM" uninstall "$1" -n "$NAMESPACE" --ignore-not-found --wait --timeout 60s >/dev/null
  rm -f "$WORK/$1.replicas.json"
  await "$1's ReplicaSets and pods to be deleted" 60 no_pods_of "$1"
}
no_pods_of() {
  [ -z "$(kubectl -n "$NAMESPACE" get replicasets,pods -l "app.kubernetes.io/instance=$1" -o name)" ]
}

failures=()

say "mutation: each chart with runAsNonRoot: false must be refused by Pod Security admission"
for chart in "${CHARTS[@]}"; do
  set +e
  mapfile -t files < <(values "$chart" dev)
  helm_op "$chart" install "$chart" "$WORK/charts/$chart" "${files[@]}" --post-renderer run-as-root
  status=$?
  set -e
  if [ "$status" -eq 3 ] && grep -q 'violates PodSecurity "restricted' <<<"$CAUSES"; then
    say "$chart: refused by Pod Security admission, as it must be"
  elif [ "$status" -eq 0 ]; then
    failures+=("$chart: installed with runAsNonRoot: false (Pod Security admission did not refuse it)")
  else
    failures+=("$chart: the mutation run failed, but not on Pod Security admission")
  fi
  uninstall "$chart"
done
[ "${#failures[@]}" -eq 0 ] || die "$(printf '\n  - %s' "${failures[@]}")"

say "install (values-dev), upgrade (values-prod), rollback to the install"
for chart in "${CHARTS[@]}"; do
  mapfile -t dev < <(values "$chart" dev)
  mapfile -t prod < <(values "$chart" prod)
  helm_op "$chart" install "$chart" "$WORK/charts/$chart" "${dev[@]}" || die "helm install $chart"
  verify "$chart" install
  helm_op "$chart" upgrade "$chart" "$WORK/charts/$chart" "${prod[@]}" || die "helm upgrade $chart"
  verify "$chart" upgrade
  helm_op "$chart" rollback "$chart" 1 || die "helm rollback $chart"
  verify "$chart" rollback
done

say "hand-over to the autoscaler: installed with it off, upgraded with it on, upgraded again (prod)"
for chart in "${CHARTS[@]}"; do
  scaler=""
  for key in keda autoscaling; do
    if [ "$("${INSPECT[@]}" value --chart "$WORK/charts/$chart" "$key.enabled")" = true ]; then scaler="$key"; fi
  done
  [ -n "$scaler" ] || continue
  mapfile -t dev < <(values "$chart" dev)
  mapfile -t prod < <(values "$chart" prod)
  uninstall "$chart"
  helm_op "$chart" install "$chart" "$WORK/charts/$chart" "${dev[@]}" --set "$scaler.enabled=false" \
    || die "helm install $chart without $scaler"
  verify "$chart" "install without $scaler"
  helm_op "$chart" upgrade "$chart" "$WORK/charts/$chart" "${dev[@]}" || die "helm upgrade $chart with $scaler"
  verify "$chart" "upgrade enabling $scaler"
  helm_op "$chart" upgrade "$chart" "$WORK/charts/$chart" "${prod[@]}" || die "helm upgrade $chart (prod)"
  verify "$chart" "upgrade to prod values"
done

# The API server refuses an ipBlock whose `except` lies outside its CIDR (helm template does not).
say "egress except ranges: two CIDRs, each except range inside one of them"
for chart in "${CHARTS[@]}"; do
  [ -n "$("${INSPECT[@]}" value --chart "$WORK/charts/$chart" networkPolicy.egress.azure.except)" ] || continue
  mapfile -t prod < <(values "$chart" prod)
  helm_op "$chart" upgrade "$chart" "$WORK/charts/$chart" "${prod[@]}" \
    --set-json 'networkPolicy.egress.azure.cidrs=["10.20.0.0/16","0.0.0.0/0"]' \
    --set-json 'networkPolicy.egress.azure.except=["10.20.4.0/24","169.254.169.254/32"]' \
    || die "helm upgrade $chart with egress except ranges"
  verify "$chart" "upgrade with egress except ranges"
done

say "cluster-test: OK, ${#CHARTS[@]} chart(s) (${CHARTS[*]}); build $(( BUILT - START ))s, cluster and charts $(( $(date +%s) - BUILT ))s"
