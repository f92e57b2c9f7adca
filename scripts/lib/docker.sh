# shellcheck shell=bash
# A private dockerd and the locally made base image, shared by scripts/images.sh and
# scripts/compose_test.sh. Source it after setting ROOT; it defines:
#
#   docker_install          apt-get docker.io and debootstrap when missing (Debian, root)
#   dockerd_start           start the private dockerd (state in $DOCKER_STATE) and wait for it;
#                           it holds a lock, so a second run on the same state waits its turn
#   dockerd_stop            stop it and unmount what it leaves mounted (call from an EXIT trap)
#   base_image              debootstrap + `docker import` of $BASE_IMAGE_LOCAL, once
#   build_service_image F T build docker/F (a product Dockerfile) as image T on the local base
#   run_logged LABEL CMD..  run CMD with its output in a log, printing the elapsed time every 30 s
#                           and the log's tail when it fails
#
# No registry is reachable here, so nothing is pulled: the base image is a minimal Debian bookworm
# with python3, imported from a debootstrap root, and the product Dockerfiles get it as BASE_IMAGE.
# The daemon runs with its default bridge but without iptables or IP forwarding: containers reach
# each other on their networks by name and published ports reach 127.0.0.1 through docker-proxy;
# nothing is routed to or from the outside.

DOCKER_STATE="${DOCKER_STATE:-$ROOT/.tools/docker}"
BASE_IMAGE_LOCAL="local/python:3.11-bookworm"
_DOCKERD_PID=""
_DOCKER0_EXISTED=""
_RUN_PID=""

say() { printf '==> [%s] %s\n' "$(date -u +%H:%M:%S)" "$*"; }
die() { printf '%s: %s\n' "$(basename "$0")" "$*" >&2; exit 1; }

docker_install() {
  if ! command -v dockerd >/dev/null 2>&1 || ! command -v debootstrap >/dev/null 2>&1; then
    [ "$(id -u)" -eq 0 ] || die "dockerd and debootstrap are missing; as root: apt-get install -y docker.io debootstrap"
    say "installing docker.io and debootstrap (apt)"
    apt-get update -qq -o DPkg::Lock::Timeout=120
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o DPkg::Lock::Timeout=120 \
      docker.io debootstrap >/dev/null
  fi
}

dockerd_start() {
  mkdir -p "$DOCKER_STATE"
  exec {_DOCKER_LOCK}>"$DOCKER_STATE/lock"
  if ! flock -n "$_DOCKER_LOCK"; then
    say "another run holds $DOCKER_STATE; waiting for it"
    flock "$_DOCKER_LOCK"
  fi
  ip link show docker0 >/dev/null 2>&1 && _DOCKER0_EXISTED=1
  export DOCKER_HOST="unix://$DOCKER_STATE/docker.sock"
  ! docker info >/dev/null 2>&1 \
    || die "a dockerd not started by this script already serves $DOCKER_HOST: stop it first"
  dockerd --host "$DOCKER_HOST" --data-root "$DOCKER_STATE/data" --exec-root "$DOCKER_STATE/exec" \
    --pidfile "$DOCKER_STATE/dockerd.pid" --iptables=false --ip-forward=false \
    >"$DOCKER_STATE/dockerd.log" 2>&1 &
  _DOCKERD_PID=$!
  for _ in $(seq 1 300); do
    kill -0 "$_DOCKERD_PID" 2>/dev/null || break
    docker info >/dev/null 2>&1 && return 0
    sleep 0.2
  done
  die "dockerd did not start: $(tail -5 "$DOCKER_STATE/dockerd.log")"
}

dockerd_stop() {
  # A build still running (the script was interrupted) goes first.
  [ -z "$_RUN_PID" ] || kill "$_RUN_PID" 2>/dev/null || true
  [ -n "$_DOCKERD_PID" ] || return 0
  kill "$_DOCKERD_PID" 2>/dev/null || true
  wait "$_DOCKERD_PID" 2>/dev/null || true
  _DOCKERD_PID=""
  # dockerd leaves its network namespaces mounted under the exec root (and, when stopped while
  # busy, its data root); without this the checkout cannot be deleted ("Device or resource busy").
  awk -v state="$DOCKER_STATE/" 'index($2, state) == 1 { print $2 }' /proc/mounts | sort -r | while read -r mnt; do
    umount "$mnt" 2>/dev/null || true
  done
  # The default bridge outlives the daemon: remove it unless it was there before.
  [ -n "$_DOCKER0_EXISTED" ] || ip link delete docker0 2>/dev/null || true
}

base_image() {
  docker image inspect "$BASE_IMAGE_LOCAL" >/dev/null 2>&1 && return 0
  local rootfs="$DOCKER_STATE/base-rootfs"
  if [ ! -x "$rootfs/usr/bin/python3" ]; then
    rm -rf "$rootfs"
    run_logged "debootstrap a minimal bookworm with python3 (about a minute)" \
      debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
      bookworm "$rootfs" http://deb.debian.org/debian
  fi
  # Package downloads here go through a TLS proxy only this machine's CA bundle knows.
  cp /etc/ssl/certs/ca-certificates.crt "$rootfs/etc/ssl/certs/ca-certificates.crt"
  say "importing $BASE_IMAGE_LOCAL"
  tar -C "$rootfs" -c . | docker import \
    --change 'ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt' \
    --change 'ENV PIP_CERT=/etc/ssl/certs/ca-certificates.crt' \
    - "$BASE_IMAGE_LOCAL" >/dev/null
}

# build_service_image DOCKERFILE TAG: a product Dockerfile, built from the repository root.
build_service_image() {
  run_logged "building $2 ($1)" \
    docker build --network host --build-arg "BASE_IMAGE=$BASE_IMAGE_LOCAL" \
    -f "$ROOT/$1" -t "$2" "$ROOT"
}

run_logged() {
  local label="$1" log start pid rc=0 waited=0
  shift
  log="$(mktemp "${TMPDIR:-/tmp}/dronedelivery-build.XXXXXX")"
  start=$SECONDS
  say "$label"
  "$@" >"$log" 2>&1 &
  pid=$!
  _RUN_PID=$pid
  while kill -0 "$pid" 2>/dev/null; do
    sleep 1
    waited=$((waited + 1))
    if [ $((waited % 30)) -eq 0 ]; then
      printf '    ... %s, %ds: %s\n' "${label%% (*}" "$((SECONDS - start))" \
        "$(tail -c 2000 "$log" | tr '\r' '\n' | sed 's/\x1b\[[0-9;]*m//g' | grep -v '^\s*$' | tail -1 | cut -c1-80)"
    fi
  done
  wait "$pid" || rc=$?
  _RUN_PID=""
  if [ "$rc" -ne 0 ]; then
    tail -30 "$log" >&2
    rm -f "$log"
    die "failed ($rc): $label"
  fi
  rm -f "$log"
  printf '    done: %s, %ds\n' "${label%% (*}" "$((SECONDS - start))"
}
