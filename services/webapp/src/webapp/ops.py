"""The operators' view: the fleet, the queue, dead letters, active deliveries and throughput.

**Throughput** is deliveries scheduled per minute. The workflow's queue view reports how many
messages were ever added to the queue (``enqueuedTotal``: the Redis stream's ``entries-added``,
which only grows); each time an operator's page refreshes, the web app records that counter with
the time in a sorted set of its own Redis (``<prefix>:ops:enqueued``, an hour kept), and the rate
is the counter's growth over the last minute of samples. So the figure is measured while someone
watches ``/ops`` (two samples a refresh apart are enough); it counts every request put on the
queue (schedules, reschedules, cancels, and a retried message once more). With Service Bus the
queue has no such counter: the view says so (Azure Monitor's ``IncomingMessages`` metric is the
place to look).
"""

from __future__ import annotations

import itertools
import json
import time
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis

KEEP_SECONDS = 3600
WINDOW_SECONDS = 60.0


@dataclass(frozen=True, slots=True)
class Rate:
    per_minute: float | None  # None until two samples are far enough apart
    over_seconds: float
    series: list[tuple[float, float]]  # (epoch seconds, per minute) for the last samples


class Throughput:
    def __init__(self, redis: Redis, *, prefix: str) -> None:
        self.redis = redis
        self.key = f"{prefix}:ops:enqueued"

    async def record(self, enqueued_total: int, now: float | None = None) -> Rate:
        """Keep this sample and answer the rate over the last minute of samples."""
        at = time.time() if now is None else now
        member = json.dumps({"t": round(at, 3), "n": enqueued_total})
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.zadd(self.key, {member: at})
            pipe.zremrangebyscore(self.key, "-inf", at - KEEP_SECONDS)
            pipe.expire(self.key, KEEP_SECONDS)
            pipe.zrangebyscore(self.key, at - 15 * WINDOW_SECONDS, "+inf")
            replies: list[Any] = await pipe.execute()
        samples = sorted(
            (float(s["t"]), int(s["n"])) for s in (json.loads(raw) for raw in replies[-1])
        )
        return rate(samples, at)


def rate(samples: list[tuple[float, int]], now: float) -> Rate:
    """Per-minute growth of the counter: over the last minute, and minute by minute."""
    if len(samples) < 2:
        return Rate(None, 0.0, [])
    latest_t, latest_n = samples[-1]
    # The oldest sample at least a few seconds back within the window (or the oldest there is).
    window = [s for s in samples if s[0] >= now - WINDOW_SECONDS] or samples
    start_t, start_n = window[0] if window[0] != samples[-1] else samples[-2]
    span = latest_t - start_t
    per_minute = max(0, latest_n - start_n) * 60.0 / span if span >= 1.0 else None
    series: list[tuple[float, float]] = []
    for (t0, n0), (t1, n1) in itertools.pairwise(samples):
        if t1 - t0 >= 1.0:
            series.append((t1, max(0, n1 - n0) * 60.0 / (t1 - t0)))
    return Rate(per_minute, span, series[-30:])
