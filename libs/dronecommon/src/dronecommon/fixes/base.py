"""The telemetry stream interface: a batch publisher and a batch consumer, whatever the transport.

Both transports (:mod:`.redis_streams`, :mod:`.eventhubs`) give the same semantics:

* **Publishing** takes a batch of fixes (:meth:`FixPublisher.publish`). The Redis transport writes
  them before it returns (and raises :class:`FixPublishError` when it cannot); the Event Hubs
  transport hands them to the SDK's buffered producer, which sends them in batches per partition
  within ``max_wait_time`` and reports a failed send to a callback (logged and counted in
  :attr:`FixPublisher.failed`). Telemetry is superseded by the next fix of the same drone, so a
  publisher never blocks the flight loop to retry a lost batch.
* **Order**: the fixes of one drone reach a consumer in publish order within a Redis stream or an
  Event Hubs partition (the partition key is the drone id). Across consumers, and after a
  redelivery, an older fix may still arrive after a newer one: a consumer keeps a fix only if it
  is :meth:`~dronecommon.fixes.model.Fix.newer_than` the one it has.
* **At least once**: :meth:`FixConsumer.run` calls the handler with batches of at most
  ``max_batch`` fixes and acknowledges a batch (Redis ``XACK``, Event Hubs checkpoint) only when
  the handler has returned, i.e. after the consumer's durable write. A handler that raises gets
  the same fixes again (after a backoff), before any newer one of the same stream or partition.
* **Competing consumers**: processes of one service share a consumer group and split the fixes
  between them (Redis: entries; Event Hubs: partitions, balanced through the checkpoint store).
* **Malformed fixes** are logged and skipped, never retried.
* **Readiness**: :meth:`check_ready` raises within ``readiness_timeout`` when the stream cannot
  be reached.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Sequence

from .model import Fix

logger = logging.getLogger("dronecommon.fixes")

FixHandler = Callable[[Sequence[Fix]], Awaitable[None]]


class FixPublishError(RuntimeError):
    """The stream did not take the batch."""


class FixStreamNotReadyError(RuntimeError):
    """The stream did not answer a readiness check correctly within the timeout."""


class FixPublisher(ABC):
    """Publishes fixes; one per process, shared by every task."""

    def __init__(self) -> None:
        self.published = 0
        self.failed = 0

    @abstractmethod
    async def publish(self, fixes: Sequence[Fix]) -> None: ...

    @abstractmethod
    async def check_ready(self) -> None: ...

    @abstractmethod
    async def close(self) -> None: ...


class FixConsumer(ABC):
    """One consumer of the service's consumer group."""

    @abstractmethod
    async def run(self, handler: FixHandler) -> None:
        """Hand batches to ``handler`` until :meth:`stop`."""

    @abstractmethod
    async def stop(self) -> None:
        """Make :meth:`run` return after the batch in hand."""

    @abstractmethod
    async def check_ready(self) -> None: ...

    @abstractmethod
    async def close(self) -> None: ...
