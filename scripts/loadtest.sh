#!/usr/bin/env bash
# `make loadtest`: locust headless against the native stack (started and stopped here) or a
# given host. Options and environment: loadtests/README.md. Exit status non-zero when a threshold
# fails. Extra arguments go to loadtests/run.py (e.g. --host https://localhost:8443).
set -euo pipefail
cd "$(dirname "$0")/.."
exec "${UV:-uv}" run --all-packages --locked python loadtests/run.py "$@"
