"""The queue interface the services use, whatever the transport.

What a service sees of the queue: the messages (:class:`OutgoingMessage`,
:class:`ReceivedMessage`, :class:`DeadLetter`), the contracts of :class:`MessageSender`,
:class:`MessageReceiver` and :class:`DeadLetterStore`, and the errors. Two transports implement it:
Azure Service Bus (:mod:`.servicebus`) in Azure and Redis Streams (:mod:`.redis_streams`) as the
embedded local default; both receivers run on the receive engine in :mod:`.engine`. Both give the
same semantics:

* **At-least-once, peek-lock.** A received message is locked to one receiver until it is settled
  or its lock expires; an expired lock (a crashed or stalled consumer) makes it deliverable again.
  Handlers must therefore be idempotent; ``message_id`` is the caller's deterministic id.
* **Explicit settlement.** Exactly one of :meth:`ReceivedMessage.complete`,
  :meth:`~ReceivedMessage.abandon` or :meth:`~ReceivedMessage.dead_letter` per delivery.
  Settling a second time raises :class:`MessageAlreadySettledError` (the Service Bus SDK's
  behaviour, kept for both transports).
  A settlement that fails (for example because the lock was lost, :class:`MessageLockLostError`)
  leaves the message unsettled, so the receiver may still try to abandon it.
* **Delivery count** is 1 on the first delivery and grows with every abandon or lock expiry. Past
  the maximum delivery count the message goes to the dead-letter queue with the reason
  ``MaxDeliveryCountExceeded``.
* **Handler contract** (:meth:`MessageReceiver.run`): at most ``max_concurrency`` handlers run at
  once; locks are renewed while a handler runs. A handler that raises without settling has its
  message abandoned (and the error logged); a handler that *returns* without settling also has its
  message abandoned (with a warning) — abandoning is the safe default because it never loses work.
* **Shutdown**: :meth:`MessageReceiver.stop` stops receiving, lets in-flight handlers finish within
  ``grace`` seconds, cancels the rest and abandons their messages, then :meth:`~MessageReceiver.run`
  returns. Cancelling the task running ``run()`` behaves like ``stop(grace=0)``.
* **Tracing**: senders put the current W3C trace context in the application properties (unless
  the caller already set ``traceparent``); every handled message runs in a CONSUMER span named
  ``"<queue> process"`` whose parent is the context carried by the message, so one trace crosses
  the queue.
* **Readiness**: ``check_ready()`` raises :class:`QueueNotReadyError` when the broker does not
  answer correctly within ``readiness_timeout`` — it never hangs, even on a silent TCP listener.
"""

from __future__ import annotations

import asyncio
import builtins
import json
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from types import TracebackType
from typing import Any, Literal, Protocol, Self, TypeVar

from dronecommon.propagation import DIAGNOSTIC_ID, TRACEPARENT, inject_trace_context

Settlement = Literal["complete", "abandon", "dead_letter"]

#: The reason given to messages dead-lettered because they were delivered too often.
MAX_DELIVERY_COUNT_EXCEEDED = "MaxDeliveryCountExceeded"

T = TypeVar("T")


class MessagingError(Exception):
    """Base class of the queue errors."""


class QueueNotReadyError(MessagingError):
    """The broker did not answer a readiness check correctly within the timeout."""


class MessageAlreadySettledError(MessagingError):
    """The message was already completed, abandoned or dead-lettered."""


class MessageLockLostError(MessagingError):
    """The lock on the message expired or was taken by another receiver: it will be redelivered."""


@dataclass(slots=True)
class OutgoingMessage:
    """A message to send. ``message_id`` must be deterministic (the caller's job)."""

    body: bytes
    message_id: str
    content_type: str = "application/json"
    properties: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.body, bytes | bytearray | memoryview):
            raise TypeError("OutgoingMessage.body must be bytes")
        self.body = bytes(self.body)
        if not self.message_id:
            raise ValueError("OutgoingMessage.message_id must not be empty")


def outgoing_properties(message: OutgoingMessage) -> dict[str, str]:
    """The application properties to send: the caller's plus the current trace context.

    A ``traceparent`` the caller already set wins (with its own ``tracestate``); only
    ``Diagnostic-Id`` is added to match it.
    """
    properties = {str(key): str(value) for key, value in message.properties.items()}
    if TRACEPARENT in properties:
        properties.setdefault(DIAGNOSTIC_ID, properties[TRACEPARENT])
        return properties
    carrier: dict[str, str] = {}
    inject_trace_context(carrier)
    for key, value in carrier.items():
        properties.setdefault(key, value)
    return properties


class ReceivedMessage(ABC):
    """A locked message handed to a handler; settle it explicitly."""

    def __init__(
        self,
        *,
        body: bytes,
        message_id: str,
        properties: Mapping[str, str],
        delivery_count: int,
        enqueued_at: datetime | None,
        content_type: str | None,
    ) -> None:
        self.body = body
        self.message_id = message_id
        self.properties: dict[str, str] = dict(properties)
        self.delivery_count = delivery_count
        self.enqueued_at = enqueued_at
        self.content_type = content_type
        self._settlement: Settlement | None = None
        self._settling = False
        self._lock_lost = False

    @property
    def settlement(self) -> Settlement | None:
        """How the message was settled, or ``None`` while it is still locked."""
        return self._settlement

    @property
    def settled(self) -> bool:
        return self._settlement is not None

    @property
    def lock_lost(self) -> bool:
        """True once lock renewal found the lock expired or taken over."""
        return self._lock_lost

    def json(self) -> Any:
        """The body parsed as JSON (raises ``ValueError`` when it is not)."""
        return json.loads(self.body)

    async def complete(self) -> None:
        """Remove the message from the queue: it was handled."""
        await self._settle("complete", self._complete)

    async def abandon(self) -> None:
        """Give the message back for prompt redelivery (its delivery count grows)."""
        await self._settle("abandon", self._abandon)

    async def dead_letter(self, reason: str, description: str = "") -> None:
        """Move the message to the dead-letter queue with a reason and description."""

        async def operation() -> None:
            await self._dead_letter(reason, description)

        await self._settle("dead_letter", operation)

    async def _settle(self, outcome: Settlement, operation: Callable[[], Awaitable[None]]) -> None:
        if self._settlement is not None or self._settling:
            raise MessageAlreadySettledError(
                f"message {self.message_id!r} is already settled ({self._settlement or 'settling'})"
            )
        self._settling = True
        try:
            await operation()
        except MessageLockLostError:
            self._lock_lost = True
            raise
        finally:
            self._settling = False
        self._settlement = outcome

    async def _release(self) -> None:
        """Give back a message no handler has seen (shutdown); transports may not count it."""
        await self._abandon()

    def _mark_lock_lost(self) -> None:
        self._lock_lost = True

    @abstractmethod
    async def _complete(self) -> None: ...

    @abstractmethod
    async def _abandon(self) -> None: ...

    @abstractmethod
    async def _dead_letter(self, reason: str, description: str) -> None: ...

    def __repr__(self) -> str:
        return (
            f"<{type(self).__name__} id={self.message_id!r} delivery={self.delivery_count}"
            f" settlement={self._settlement}>"
        )


Handler = Callable[[ReceivedMessage], Awaitable[None]]


class MessageSender(ABC):
    """Sends messages to one queue."""

    @abstractmethod
    async def send(self, message: OutgoingMessage) -> None:
        """Send one message; returns once the broker has it."""

    async def send_many(self, messages: Sequence[OutgoingMessage]) -> None:
        """Send several messages (transports send them as one batch where they can)."""
        for message in messages:
            await self.send(message)

    @abstractmethod
    async def check_ready(self) -> None:
        """Raise :class:`QueueNotReadyError` unless the queue can take messages (bounded)."""

    @abstractmethod
    async def close(self) -> None:
        """Release connections."""

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()


class MessageReceiver(ABC):
    """Receives messages from one queue and hands them to a handler."""

    @abstractmethod
    async def run(self, handler: Handler) -> None:
        """Receive and handle messages until :meth:`stop` (or cancellation). Runs once."""

    @abstractmethod
    async def stop(self, grace: float) -> None:
        """Stop receiving, give in-flight handlers ``grace`` seconds, abandon the rest, return."""

    @abstractmethod
    async def check_ready(self) -> None:
        """Raise :class:`QueueNotReadyError` unless messages can be received (bounded)."""

    @abstractmethod
    async def close(self) -> None:
        """Release connections (after :meth:`stop`)."""

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A dead-lettered message, as listed by a :class:`DeadLetterStore`.

    ``id`` identifies the entry in the dead-letter queue (pass it to ``replay``); ``message_id``
    is the original message's id.
    """

    id: str
    message_id: str
    body: bytes
    content_type: str | None
    properties: dict[str, str]
    reason: str
    description: str
    delivery_count: int
    enqueued_at: datetime | None
    dead_lettered_at: datetime | None


class DeadLetterStore(Protocol):
    """The dead-letter queue of one queue: list entries and replay chosen ones."""

    async def list(self, limit: int = 100) -> list[DeadLetter]:
        """The oldest ``limit`` dead letters, oldest first, without removing them."""
        ...

    async def replay(self, ids: Sequence[str]) -> builtins.list[str]:
        """Put the chosen dead letters back on the queue; returns the ids that were replayed."""
        ...

    async def check_ready(self) -> None: ...

    async def close(self) -> None: ...


async def bounded_check(check: Awaitable[T], limit: float, what: str) -> T:
    """Await a readiness check within ``limit`` seconds; failures become QueueNotReadyError."""
    try:
        async with asyncio.timeout(limit):
            return await check
    except TimeoutError as exc:
        raise QueueNotReadyError(f"{what}: no answer within {limit:g}s") from exc
    except QueueNotReadyError:
        raise
    except Exception as exc:
        raise QueueNotReadyError(f"{what}: {type(exc).__name__}: {exc}") from exc
