"""Admission control at the front door: no new delivery while the queue holds too much work.

Past its capacity the pipeline cannot schedule more by being offered more: what ingestion
accepts beyond it only waits in the queue, and every accepted request waits longer. So a new
delivery request (``POST``) is refused with 503 ``overloaded`` and ``Retry-After`` — by
:class:`AdmissionGate`, before the route is matched, the token checked or the body read; nothing
recorded, nothing queued — while the queue holds more than
``max_backlog_seconds`` of work: its backlog divided by the rate at which the workflow drained it
over the last ``window`` seconds. Reschedules and cancels are always admitted (a cancel removes
work). Readiness does not change: an overloaded replica is alive and well, it only sheds load.

**Cheap on the request path.** A background task reads the queue once per ``interval`` (per
replica); a request compares two numbers: the backlog last read plus what this replica admitted
since, against the limit ``max(min_backlog, max_backlog_seconds x drain rate)``.

**The queue's numbers**, per transport:

- Redis Streams: one ``XINFO STREAM``. The stream holds only unfinished work (a completed
  message is deleted), so its ``length`` is the backlog (waiting and being handled) and
  ``entries-added - length`` the messages ever taken off it: the drain rate is its growth over
  the window.
- Azure Service Bus: the queue's active message count from the administration client
  (``get_queue_runtime_properties``; the identity needs the Azure Service Bus Data Owner role,
  reading runtime properties being a management operation). Service Bus reports no count of
  completed messages, so the drain rate is not observable: ``servicebus_drain_rate`` (the
  workflow fleet's throughput, measured by ``make bench``) stands in for it; unset, admission
  control is off on Service Bus.

**Fails open.** A probe that errors or times out admits every request (logged once per
outage): the queue's own failures are the send's to report (a 503 ``queue-unavailable``).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import math
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from azure.core.credentials_async import AsyncTokenCredential
from redis.asyncio import Redis
from redis.exceptions import ResponseError
from starlette.types import ASGIApp, Receive, Scope, Send

from dronecommon.messaging.redis_streams import queue_redis_client, stream_key
from dronecommon.problems import error_response
from dronecommon.settings import QueueSettings
from dronecommon.telemetry import untraced

from .errors import Overloaded
from .settings import AdmissionSettings

logger = logging.getLogger("ingestion.admission")


@dataclass(frozen=True, slots=True)
class Reading:
    """What the queue says: its backlog, and (when it can tell) the messages ever drained."""

    backlog: int
    drained: int | None = None


class BacklogProbe(Protocol):
    async def read(self) -> Reading: ...


class RedisBacklog:
    """The Redis Streams queue: ``XINFO STREAM queue:{name}`` (one round trip)."""

    def __init__(self, redis: Redis, queue_name: str) -> None:
        self._redis = redis
        self._stream = stream_key(queue_name)

    async def read(self) -> Reading:
        try:
            info = await self._redis.xinfo_stream(self._stream)
        except ResponseError as exc:
            if "no such key" in str(exc).lower():  # nothing was ever sent
                return Reading(backlog=0, drained=0)
            raise
        length = int(info["length"])
        return Reading(backlog=length, drained=int(info["entries-added"]) - length)


class ServiceBusBacklog:
    """A Service Bus queue: its active message count, through the administration client
    (``azure.servicebus.aio.management.ServiceBusAdministrationClient``)."""

    def __init__(self, admin: Any, queue_name: str) -> None:
        self._admin = admin
        self._queue_name = queue_name

    async def read(self) -> Reading:
        properties = await self._admin.get_queue_runtime_properties(self._queue_name)
        return Reading(backlog=int(properties.active_message_count))


class Admission:
    """Reads the queue every ``interval`` (:meth:`run`) and admits or refuses (:meth:`check`)."""

    def __init__(
        self,
        probe: BacklogProbe,
        settings: AdmissionSettings,
        *,
        drain_rate: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """``drain_rate``: messages per second, for a queue that cannot tell (Service Bus)."""
        self.settings = settings
        self._probe = probe
        self._fixed_rate = drain_rate
        self._clock = clock
        self._readings: collections.deque[tuple[float, int]] = collections.deque()
        # The verdict's inputs, refreshed by each reading.
        self._backlog = 0
        self._rate: float | None = drain_rate
        self._limit = math.inf
        self._admitted_since = 0
        self._failing = False
        self._shedding = False
        self._stopping = asyncio.Event()

    # -- the request path ------------------------------------------------------------------------

    def check(self) -> None:
        """Admit one new request, or raise :class:`Overloaded`."""
        if self._backlog + self._admitted_since > self._limit:
            rate = self._rate or 0.0
            excess = self._backlog + self._admitted_since - self._limit
            wait = excess / rate if rate > 0 else self.settings.retry_after_max
            retry_after = min(self.settings.retry_after_max, max(1, math.ceil(wait)))
            raise Overloaded(self._backlog, rate, self.settings.max_backlog_seconds, retry_after)
        self._admitted_since += 1

    # -- the background reader -------------------------------------------------------------------

    async def sample(self) -> None:
        """Read the queue once and set the limit the requests are checked against."""
        try:
            async with asyncio.timeout(max(1.0, self.settings.interval)):
                with untraced():  # a poll, several a second: no trace of its own
                    reading = await self._probe.read()
        except Exception as exc:
            if not self._failing:
                logger.warning(
                    "admission control cannot read the queue (%s: %s); admitting every request",
                    type(exc).__name__,
                    exc,
                )
            self._failing = True
            self._readings.clear()
            self._backlog, self._limit, self._admitted_since = 0, math.inf, 0
            return
        if self._failing:
            logger.info("admission control reads the queue again")
            self._failing = False
        now = self._clock()
        self._backlog = reading.backlog
        self._admitted_since = 0
        self._rate = self._fixed_rate
        if reading.drained is not None:
            self._readings.append((now, reading.drained))
            # Keep the newest reading at least ``window`` old: the rate spans the window even
            # when a reading came late.
            while len(self._readings) > 2 and now - self._readings[1][0] >= self.settings.window:
                self._readings.popleft()
            self._rate = self._drain_rate()
        self._limit = self._limit_for(self._rate)
        self._log_transition()

    def _drain_rate(self) -> float | None:
        """Messages drained per second over the window (None until two readings span it)."""
        if len(self._readings) < 2:
            return None
        (first_at, first), (last_at, last) = self._readings[0], self._readings[-1]
        if last_at - first_at < self.settings.interval:
            return None
        return max(0.0, (last - first) / (last_at - first_at))

    def _limit_for(self, rate: float | None) -> float:
        if rate is None:  # not known yet: admit
            return math.inf
        return max(float(self.settings.min_backlog), self.settings.max_backlog_seconds * rate)

    def _log_transition(self) -> None:
        shedding = self._backlog > self._limit
        if shedding != self._shedding:
            self._shedding = shedding
            logger.warning(
                "admission control %s new delivery requests: backlog %d messages, drain "
                "%.1f/s, limit %.0f messages",
                "refuses" if shedding else "admits again",
                self._backlog,
                self._rate or 0.0,
                self._limit,
            )

    async def run(self) -> None:
        """Sample every ``interval`` until :meth:`stop`."""
        while not self._stopping.is_set():
            await self.sample()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self.settings.interval)

    def stop(self) -> None:
        self._stopping.set()


@contextlib.asynccontextmanager
async def admission_control(
    settings: AdmissionSettings,
    queue: QueueSettings,
    *,
    redis: Redis,
    credential: AsyncTokenCredential | None,
) -> AsyncIterator[Admission]:
    """The admission control of ``queue``, reading it in the background while the app runs.

    ``redis`` is the service's own client (raw replies), used when the queue has no Redis of its
    own. Switched off (or Service Bus without a drain rate), it admits every request.
    """
    async with contextlib.AsyncExitStack() as stack:
        probe: BacklogProbe | None = None
        drain_rate = None
        if not settings.enabled:
            pass
        elif queue.transport == "redis":
            if queue.redis_url:
                redis = queue_redis_client(queue.redis_url)
                stack.push_async_callback(redis.aclose)
            probe = RedisBacklog(redis, queue.name)
        elif settings.servicebus_drain_rate is None:
            logger.warning(
                "admission control is off: Service Bus does not report how fast its queue "
                "drains; set INGESTION_ADMISSION__SERVICEBUS_DRAIN_RATE"
            )
        else:
            admin = _servicebus_admin(queue, credential)
            stack.push_async_callback(admin.close)
            probe = ServiceBusBacklog(admin, queue.name)
            drain_rate = settings.servicebus_drain_rate
        if probe is None:
            yield Admission(_Never(), settings)
            return
        admission = Admission(probe, settings, drain_rate=drain_rate)
        task = asyncio.create_task(admission.run(), name="ingestion-admission")

        async def stop() -> None:
            admission.stop()
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

        stack.push_async_callback(stop)
        yield admission


class AdmissionGate:
    """The ASGI middleware that refuses a new delivery request (``POST path``) while
    :class:`Admission` says so, before the route is matched, the token checked or the body read.

    A refusal is the front door's cheapest answer: past the knee it is most of what the front
    door does, and every microsecond it costs is taken from the pipeline that schedules the
    admitted ones. The answer is the same problem+json (``overloaded``, ``Retry-After``) the
    exception handlers would give, logged and traced like any other (the gate runs inside the
    access log and the telemetry). Consequences of the order, both deliberate: while overloaded a
    request without a valid token is refused with 503 too (the gate knows nothing of the caller,
    and the verdict says nothing about anyone's data), and an admitted request that then fails its
    token or its validation counts as admitted until the next reading of the queue (at most
    ``interval`` later), which errs on the side of refusing.
    """

    def __init__(self, app: ASGIApp, *, path: str) -> None:
        self.app = app
        self.path = path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST" and scope["path"] == self.path:
            admission: Admission = scope["state"]["admission"]  # the lifespan's (runtime.py)
            try:
                admission.check()
            except Overloaded as exc:
                await error_response(scope, exc)(scope, receive, send)
                return
        await self.app(scope, receive, send)


class _Never:
    """The probe of an admission control that is off (it is never read)."""

    async def read(self) -> Reading:
        return Reading(backlog=0)


def _servicebus_admin(queue: QueueSettings, credential: AsyncTokenCredential | None) -> Any:
    from azure.servicebus.aio.management import ServiceBusAdministrationClient

    secret = queue.servicebus_connection_string
    if secret is not None:
        return ServiceBusAdministrationClient.from_connection_string(secret.get_secret_value())
    if queue.servicebus_namespace and credential is not None:
        return ServiceBusAdministrationClient(queue.servicebus_namespace, credential)
    raise ValueError("Service Bus needs a connection string or a namespace with a credential")
