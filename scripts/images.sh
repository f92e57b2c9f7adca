#!/usr/bin/env bash
# Build every service image for real on this machine and check that each starts as non-root,
# answers /healthz and serves its API docs' assets, and that `--help` works. No registry is
# reachable here, so the base image is made locally (debootstrap + `docker import`) and passed as
# BASE_IMAGE; the product Dockerfiles are unchanged.
#
#   scripts/images.sh            # build and smoke-test every image
#   SERVICES="package" scripts/images.sh
#
# A private dockerd (scripts/lib/docker.sh) runs with its state under .tools/docker and is stopped
# at the end.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=scripts/lib/docker.sh
source "$ROOT/scripts/lib/docker.sh"
SERVICES="${SERVICES:-ingestion delivery package dronescheduler workflow simulator notifier webapp}"

CONTAINERS=()
cleanup() {
  for c in "${CONTAINERS[@]:-}"; do [ -n "$c" ] && docker rm -f "$c" >/dev/null 2>&1 || true; done
  dockerd_stop
}
trap cleanup EXIT

docker_install
dockerd_start
base_image

NO_TEST_TOOLS='
import importlib.util, sys
found = [m for m in ("dronetesting", "pytest", "schemathesis", "hypothesis", "httpx") if importlib.util.find_spec(m)]
sys.exit(f"found {found}" if found else 0)'

# SIGTERM, then up to $2 seconds for the container to exit by itself. A container still running
# then has its Python stacks (py-spy, from the host) and its log's tail printed, and is killed.
stop_gracefully() {
  local name="$1" seconds="$2" pid
  docker kill -s TERM "$name" >/dev/null
  for _ in $(seq 1 $((seconds * 10))); do
    [ "$(docker inspect -f '{{.State.Running}}' "$name")" = "false" ] && return 0
    sleep 0.1
  done
  pid="$(docker inspect -f '{{.State.Pid}}' "$name")"
  echo "--- $name still running $seconds s after SIGTERM; its Python stacks:" >&2
  "$ROOT/.venv/bin/py-spy" dump --pid "$pid" >&2 || true
  echo "--- its log:" >&2
  docker logs --tail 40 "$name" >&2 || true
  docker kill "$name" >/dev/null || true
  return 1
}

port=18080
for svc in $SERVICES; do
  build_service_image "docker/$svc.Dockerfile" "dronedelivery/$svc:local"
  user="$(docker image inspect -f '{{.Config.User}}' "dronedelivery/$svc:local")"
  [ "$user" = "10001:10001" ] || die "$svc: image user is '$user', not 10001:10001"
  port=$((port + 1))
  upper="$(echo "$svc" | tr '[:lower:]' '[:upper:]')"
  name="smoke-$svc-$$"
  # Alone, with no token issuer to trust: tokens switched off explicitly for the smoke test (the
  # web app's development sign-in makes its key in the container's /tmp).
  extra=()
  [ "$svc" = webapp ] && extra=(-e "WEBAPP_AUTH__DEV_SIGNING_KEY_FILE=/tmp/dev-issuer/signing-key.pem")
  # A listener already on the port would answer /healthz for the container.
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then die "port $port is taken before $svc starts"; fi
  docker run -d --name "$name" --network host -e "${upper}_PORT=$port" -e "${upper}_HOST=127.0.0.1" \
    -e "${upper}_AUTH__ENABLED=false" "${extra[@]}" "dronedelivery/$svc:local" >/dev/null
  CONTAINERS+=("$name")
  ok=""
  for _ in $(seq 1 100); do
    if curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1; then ok=1; break; fi
    sleep 0.2
  done
  [ -n "$ok" ] || die "$svc did not answer /healthz: $(docker logs "$name" 2>&1 | tail -5)"
  # The API docs' scripts ship in the image (no CDN).
  assets=(/docs/swagger-ui-bundle.js /redoc/redoc.standalone.js)
  # The web app's map library, built into the image from the npm lock.
  [ "$svc" = webapp ] && assets=(/static/vendor/leaflet/leaflet.js /static/vendor/leaflet/leaflet.css)
  for asset in "${assets[@]}"; do
    curl -fsS -o /dev/null "http://127.0.0.1:$port$asset" || die "$svc does not serve $asset"
  done
  docker run --rm "dronedelivery/$svc:local" --help >/dev/null || die "$svc: --help failed"
  # Test tools and the test kit stay out of the image (tests/deploy/test_images.py checks the same
  # without Docker).
  docker run --rm --entrypoint python "dronedelivery/$svc:local" -c "$NO_TEST_TOOLS" \
    || die "$svc: the image ships test tools"
  uid="$(docker exec "$name" id -u)"
  [ "$uid" = "10001" ] || die "$svc runs as uid $uid"
  # Exec-form entrypoint: SIGTERM reaches python directly and it exits promptly.
  stop_gracefully "$name" 15 || die "$svc did not stop within 15 s of SIGTERM (its stacks and log above)"
  code="$(docker inspect -f '{{.State.ExitCode}}' "$name")"
  [ "$code" = "0" ] || die "$svc exited with $code on SIGTERM: $(docker logs "$name" 2>&1 | tail -20)"
  say "$svc: built, runs as uid 10001, /healthz 200, docs assets served, --help, no test tools, clean stop"
done
say "all images verified: $SERVICES"
