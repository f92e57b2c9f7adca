# shellcheck shell=bash
# Local stand-ins for the third-party images docker-compose.yml names, for `make compose-test`
# where no registry is reachable. Source after scripts/lib/docker.sh; `standins_binaries` then
# `standins_images` build what is missing and export REDIS_IMAGE, MONGO_IMAGE, GATEWAY_IMAGE,
# JAEGER_IMAGE and MAILPIT_IMAGE, the variables compose reads, so the compose files stay as users
# run them.
#
# Each stand-in is pinned: the same release as the upstream image where it is built from source,
# the Debian package version otherwise. Go binaries are cached outside the checkout in
# $STANDIN_CACHE/<tool>-<version>/, with the build command that made them (`recipe`): a cold
# build of all three is the long part of a cold `make compose-test` (docker/README.md), Jaeger
# about half of it. An image is rebuilt only when its Dockerfile, files or version change.
#
#   redis    Debian bookworm's redis-server 7.0.15 (protected mode off, as the official image)
#   mongo    FerretDB (SQLite handler), the binary `make setup` builds, and a ping-only `mongosh`
#   gateway  Caddy v2.11.9 (`go install`, with the build tags of Caddy's release binaries)
#   jaeger   Jaeger v2 from the Go module github.com/jaegertracing/jaeger v1.75.0 (a throwaway
#            module, because the upstream go.mod cannot be `go install`ed)
#   mailpit  Mailpit v1.33.1 (`go install`)

STANDIN_CACHE="${STANDIN_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/dronedelivery/compose}"
REDIS_DEB_VERSION="7.0.15"
PYMONGO_VERSION="4.20.1"
CADDY_VERSION="v2.11.9"
JAEGER_MODULE_VERSION="v1.75.0"
MAILPIT_VERSION="v1.33.1"

# _cached NAME VERSION MODULE RECIPE: true when the cache holds NAME built by RECIPE (the build
# command, written next to the binary) and `go version -m` shows MODULE at VERSION in it.
_cached() {
  local dir="$STANDIN_CACHE/$1-$2"
  [ -x "$dir/$1" ] && [ "$(cat "$dir/recipe" 2>/dev/null)" = "$4" ] \
    && go version -m "$dir/$1" 2>/dev/null | grep -Eq "^\s+(mod|dep)\s+$3\s+$2\s"
}

_store() { # NAME VERSION BINARY RECIPE
  local dir="$STANDIN_CACHE/$1-$2"
  mkdir -p "$dir"
  rm -f "$dir/recipe"
  mv "$3" "$dir/$1"
  printf '%s\n' "$4" >"$dir/recipe"
}

_go_install() { # NAME VERSION PACKAGE MODULE [GO-INSTALL-FLAG...]
  local name="$1" version="$2" package="$3" module="$4" tmp recipe
  shift 4
  recipe="go install -trimpath $* $package@$version"
  _cached "$name" "$version" "$module" "$recipe" && return 0
  tmp="$(mktemp -d "$STANDIN_CACHE/.build-$name.XXXXXX")"
  run_logged "building $name $version (go install; cached in $STANDIN_CACHE/$name-$version)" \
    env GOBIN="$tmp" CGO_ENABLED=0 GOFLAGS=-buildvcs=false go install -v -trimpath "$@" "$package@$version"
  _store "$name" "$version" "$tmp/$name" "$recipe"
  rm -rf "$tmp"
}

# _jaeger_module DIR MODULE VERSION: in the module at DIR, Jaeger's replace directives, then
# Jaeger's command as a tool.
_jaeger_module() {
  local gomod replace
  cd "$1" || return 1
  gomod="$(go mod download -json "$2@$3" | python3 -c 'import json, sys; print(json.load(sys.stdin)["GoMod"])')"
  go mod edit -json "$gomod" | python3 -c '
import json, sys
for r in json.load(sys.stdin).get("Replace") or []:
    if r["New"].get("Version"):  # module replacements; local directories cannot be copied
        print(r["Old"]["Path"] + "=" + r["New"]["Path"] + "@" + r["New"]["Version"])
' | while read -r replace; do
    go mod edit -replace "$replace"
  done
  go get -tool "$2/cmd/jaeger@$3"
}

_build_jaeger() {
  local version="$JAEGER_MODULE_VERSION" module=github.com/jaegertracing/jaeger tmp recipe
  recipe="go get -tool $module/cmd/jaeger@$version (with its replaces); go build -trimpath -ldflags '-s -w'"
  _cached jaeger "$version" "$module" "$recipe" && return 0
  tmp="$(mktemp -d "$STANDIN_CACHE/.build-jaeger.XXXXXX")"
  # `go install module@version` refuses a go.mod with replace directives, as Jaeger's has: a
  # module of our own requires Jaeger's as a tool, with Jaeger's replace directives copied into it
  # (they apply only in the main module), so the build gets exactly the versions Jaeger's does.
  (cd "$tmp" && go mod init standin.local/jaeger >/dev/null 2>&1)
  run_logged "resolving Jaeger's module $version" _jaeger_module "$tmp" "$module" "$version"
  run_logged "building jaeger from $module $version (the longest: 4-10 minutes cold; cached in $STANDIN_CACHE/jaeger-$version)" \
    env -C "$tmp" CGO_ENABLED=0 GOFLAGS=-buildvcs=false \
    go build -v -trimpath -ldflags "-s -w" -o "$tmp/jaeger" "$module/cmd/jaeger"
  _store jaeger "$version" "$tmp/jaeger" "$recipe"
  rm -rf "$tmp"
}

# _standin_image NAME TAG DOCKERFILE FILE... [-- BUILD-ARG...]: build docker/standins/DOCKERFILE
# with FILEs (absolute paths) as its context, unless TAG already carries the same content hash.
_standin_image() {
  local name="$1" tag="$2" dockerfile="$ROOT/docker/standins/$3" context hash args=()
  shift 3
  context="$(mktemp -d "${TMPDIR:-/tmp}/dronedelivery-standin.XXXXXX")"
  while [ $# -gt 0 ] && [ "$1" != "--" ]; do
    cp -l "$1" "$context/" 2>/dev/null || cp "$1" "$context/"
    shift
  done
  [ $# -eq 0 ] || shift
  for arg in "$@"; do args+=(--build-arg "$arg"); done
  hash="$( (cat "$dockerfile"; printf '%s\n' "$@"; cd "$context" && find . -type f -print0 | sort -z | xargs -0 sha256sum) | sha256sum | cut -c1-16)"
  if [ "$(docker image inspect -f '{{index .Config.Labels "org.dronedelivery.standin"}}' "$tag" 2>/dev/null)" = "$hash" ]; then
    say "$name: $tag is up to date"
  else
    run_logged "building the $name stand-in image $tag" \
      docker build --network host --build-arg "BASE_IMAGE=$BASE_IMAGE_LOCAL" "${args[@]}" \
      --label "org.dronedelivery.standin=$hash" -f "$dockerfile" -t "$tag" "$context"
  fi
  rm -rf "$context"
}

# standins_binaries: the Go binaries, built when missing from the cache. Needs no dockerd, so it
# can run in the background while the images that need no binary are built.
standins_binaries() {
  command -v go >/dev/null 2>&1 || die "Go is missing (needed to build the stand-ins): install Go >= 1.24"
  mkdir -p "$STANDIN_CACHE"
  # Left by an interrupted build (a running one is younger).
  find "$STANDIN_CACHE" -maxdepth 1 -name '.build-*' -mmin +360 -exec rm -rf {} + 2>/dev/null || true
  # The tags of Caddy's own release builds (.goreleaser.yml): no database drivers nobody uses.
  _go_install caddy "$CADDY_VERSION" github.com/caddyserver/caddy/v2/cmd/caddy github.com/caddyserver/caddy/v2 \
    -tags nobadger,nomysql,nopgx -ldflags "-s -w"
  _go_install mailpit "$MAILPIT_VERSION" github.com/axllent/mailpit github.com/axllent/mailpit \
    -ldflags "-s -w -X github.com/axllent/mailpit/config.Version=$MAILPIT_VERSION"
  _build_jaeger
}

# standins_images [redis mongo gateway jaeger mailpit]: build the named stand-in images (all by
# default; the last three need standins_binaries first) and export the *_IMAGE variables.
standins_images() {
  local ferretdb="$ROOT/.tools/bin/ferretdb" ferretdb_version name names=("$@")
  [ $# -gt 0 ] || names=(redis mongo gateway jaeger mailpit)
  [ -x "$ferretdb" ] || die "$ferretdb is missing: run make setup"
  ferretdb_version="$("$ferretdb" --version | sed -n 's/^version: //p')"
  export REDIS_IMAGE="local/standin-redis:$REDIS_DEB_VERSION"
  export MONGO_IMAGE="local/standin-mongo:ferretdb-$ferretdb_version"
  export GATEWAY_IMAGE="local/standin-caddy:${CADDY_VERSION#v}"
  export JAEGER_IMAGE="local/standin-jaeger:module-${JAEGER_MODULE_VERSION#v}"
  export MAILPIT_IMAGE="local/standin-mailpit:$MAILPIT_VERSION"
  for name in "${names[@]}"; do
    case "$name" in
      redis) _standin_image redis "$REDIS_IMAGE" redis.Dockerfile \
        "$ROOT/docker/standins/redis-entrypoint.sh" -- "REDIS_VERSION=$REDIS_DEB_VERSION" ;;
      mongo) _standin_image mongo "$MONGO_IMAGE" mongo.Dockerfile \
        "$ferretdb" "$ROOT/docker/standins/mongosh.py" -- "PYMONGO_VERSION=$PYMONGO_VERSION" ;;
      gateway) _standin_image caddy "$GATEWAY_IMAGE" caddy.Dockerfile \
        "$STANDIN_CACHE/caddy-$CADDY_VERSION/caddy" ;;
      jaeger) _standin_image jaeger "$JAEGER_IMAGE" jaeger.Dockerfile \
        "$STANDIN_CACHE/jaeger-$JAEGER_MODULE_VERSION/jaeger" ;;
      mailpit) _standin_image mailpit "$MAILPIT_IMAGE" mailpit.Dockerfile \
        "$STANDIN_CACHE/mailpit-$MAILPIT_VERSION/mailpit" ;;
      *) die "no stand-in for $name" ;;
    esac
  done
}
