# shellcheck shell=bash
# Versions and cache locations of the local control plane `make cluster-test` runs (sourced by
# build.sh and test.sh). Everything is built from the Go module proxy and cached outside the
# repository, one directory per component and version: bumping a version rebuilds only that part.

K8S_VERSION="${K8S_VERSION:-v1.37.2}"            # kube-apiserver, -controller-manager, -scheduler, kubectl
ETCD_VERSION="${ETCD_VERSION:-v3.6.17}"
KWOK_VERSION="${KWOK_VERSION:-v0.7.0}"           # fake nodes and pods (no kubelet, no container runtime)
# Modules that ship the CRDs the charts use (their config/crd YAML, as the projects release them).
GATEWAY_API_VERSION="${GATEWAY_API_VERSION:-v1.6.3}"
KEDA_VERSION="${KEDA_VERSION:-v2.20.2}"
SECRETS_STORE_CSI_VERSION="${SECRETS_STORE_CSI_VERSION:-v1.5.4}"

CLUSTER_CACHE="${DRONEDELIVERY_CLUSTER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/dronedelivery/cluster}"
KUBE_DIR="$CLUSTER_CACHE/kubernetes-$K8S_VERSION"
ETCD_DIR="$CLUSTER_CACHE/etcd-$ETCD_VERSION"
KWOK_DIR="$CLUSTER_CACHE/kwok-$KWOK_VERSION"
CRD_DIR="$CLUSTER_CACHE/crds-gateway-api-$GATEWAY_API_VERSION-keda-$KEDA_VERSION-secrets-store-csi-$SECRETS_STORE_CSI_VERSION"
