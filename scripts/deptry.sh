#!/usr/bin/env bash
# Every package a workspace member imports at run time is declared in that member's own
# pyproject.toml: deptry per member, over its src/ (what an image ships), against its
# dependencies. Tests, benchmarks, scripts and load tests run in the workspace's environment;
# what they import comes from the root's `dev` group (the test kit among it).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
UV="${UV:-uv}"

failed=()
for member in libs/*/ services/*/; do
  member="${member%/}"
  [ -f "$member/pyproject.toml" ] && [ -d "$member/src" ] || continue
  if ! "$UV" run --locked deptry "$member/src" --config "$member/pyproject.toml"; then
    failed+=("$member")
  fi
done
if [ "${#failed[@]}" -gt 0 ]; then
  echo "deptry: undeclared or unused dependencies in ${failed[*]}" >&2
  exit 1
fi
