#!/bin/sh
# The official image builds Redis with protected mode off (its ports are published explicitly or
# not at all); Debian's redis-server has it on. An explicit --protected-mode later in the
# arguments still wins.
set -e
if [ "$1" = "redis-server" ]; then
  shift
  if [ $# -gt 0 ] && [ "${1#-}" = "$1" ]; then
    conf="$1"
    shift
    set -- redis-server "$conf" --protected-mode no "$@"
  else
    set -- redis-server --protected-mode no "$@"
  fi
fi
exec "$@"
