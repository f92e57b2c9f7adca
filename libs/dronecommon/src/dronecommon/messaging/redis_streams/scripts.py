"""The Lua scripts of the Redis Streams transport, kept as ``.lua`` files in ``lua/`` beside
this module and read as package data.

Every step that must not interleave with another consumer's runs as one script: settling or
renewing a delivery first checks, in the same script, that this consumer still holds the lock
(``owned.lua``, prepended to those scripts).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from functools import cache
from importlib.resources import files

from redis.asyncio import Redis
from redis.commands.core import AsyncScript

_PACKAGE = __name__.rpartition(".")[0]

# The scripts that start by checking the lock with ``owned()``.
_LOCK_CHECKED = frozenset({"complete", "requeue", "dead_letter", "renew"})


@cache
def source(name: str) -> str:
    """The text of ``lua/<name>.lua``, with the lock check prepended where the script uses it."""
    text = (files(_PACKAGE) / "lua" / f"{name}.lua").read_text(encoding="utf-8")
    return source("owned") + text if name in _LOCK_CHECKED else text


@dataclass(frozen=True, slots=True)
class ReceiverScripts:
    """The scripts a receiver and its messages run, registered on its client."""

    complete: AsyncScript
    requeue: AsyncScript
    dead_letter: AsyncScript
    renew: AsyncScript
    reclaim: AsyncScript
    prune: AsyncScript
    leave: AsyncScript

    @classmethod
    def register(cls, redis: Redis) -> ReceiverScripts:
        return cls(*(redis.register_script(source(field.name)) for field in fields(cls)))


def replay_script(redis: Redis) -> AsyncScript:
    """The script that puts chosen dead letters back on the queue."""
    return redis.register_script(source("replay"))
