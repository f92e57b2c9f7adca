"""The queue's Redis client: the library's one factory, sized and tuned for the queue.

* **Raw bytes**: bodies are bytes, so the client never decodes replies (a client that does is
  refused by :func:`check_raw_client`).
* **A pool that makes callers wait**: every handler may settle at once, besides the receive loop
  and lock renewals, so the pool holds ``max_concurrency + 16`` connections (at least 100) and a
  caller finding them all busy waits its turn instead of failing with "Too many connections".
* **Timeouts**: a receiver's blocking ``XREADGROUP`` waits up to ``receive_wait``, so its socket
  timeout outlasts that by 5 s; senders and the dead-letter store use 5 s.
* **Reconnects**: two quick retries after a dropped connection (a Redis restart).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from redis.asyncio import Redis

from dronecommon.redis import create_redis_client
from dronecommon.settings import RedisSettings

if TYPE_CHECKING:
    from dronecommon.auth.credentials import AsyncTokenSource

_TIMEOUT = 5.0
_SPARE_CONNECTIONS = 16
_MIN_CONNECTIONS = 100
_RECONNECT_RETRIES = 2


def queue_redis_client(
    url: str,
    *,
    settings: RedisSettings | None = None,
    credential: AsyncTokenSource | None = None,
    receive_wait: float | None = None,
    max_concurrency: int = 0,
) -> Redis:
    """A Redis client for the queue at ``url``.

    ``settings`` are the service's Redis settings when the queue should sign in the same way (their
    Microsoft Entra ID mode, with ``credential``); their URL, timeouts and pool size do not apply.
    Pass ``receive_wait`` for a receiver's client and ``max_concurrency`` for the handlers that
    settle through it.
    """
    socket_timeout = _TIMEOUT if receive_wait is None else max(_TIMEOUT, receive_wait + _TIMEOUT)
    return create_redis_client(
        settings or RedisSettings(url=url),
        credential,
        url=url,
        blocking_pool=True,
        socket_timeout=socket_timeout,
        socket_connect_timeout=_TIMEOUT,
        max_connections=max(_MIN_CONNECTIONS, max_concurrency + _SPARE_CONNECTIONS),
        reconnect_retries=_RECONNECT_RETRIES,
        decode_responses=False,
    )


def check_raw_client(redis: Redis) -> None:
    """Refuse a client that decodes replies: the queue stores raw bytes."""
    kwargs = getattr(getattr(redis, "connection_pool", None), "connection_kwargs", {})
    if kwargs.get("decode_responses"):
        raise ValueError("the queue needs a Redis client with decode_responses=False (raw bytes)")
