"""The receive engine both transports' receivers run on: :class:`PullReceiver`.

A transport supplies the hooks: fetching up to *n* locked messages (:meth:`PullReceiver._fetch`),
keeping a handled message's lock alive (:meth:`~PullReceiver._track` /
:meth:`~PullReceiver._untrack`), and opening and closing what receiving needs
(:meth:`~PullReceiver._start` / :meth:`~PullReceiver._finish`). The engine does the rest, as
:mod:`.base` states it:

* **Bounded concurrency.** At most ``max_concurrency`` handlers run at once. The engine asks the
  transport for at most as many messages as there are free handler slots and hands every message
  it gets to a handler at once, so it never holds a locked message that no handler is working on.
* **Settlement.** Each message runs in a CONSUMER span under the trace context it carries; a
  handler that raises, is cancelled or returns without settling has its message abandoned (within
  ``settle_timeout``).
* **Failures to receive** are logged and retried with capped exponential backoff and jitter.
* **Shutdown.** :meth:`~PullReceiver.stop` ends receiving, waits for in-flight handlers until the
  grace deadline, cancels the rest (which abandon on the way out), gives back messages fetched but
  not yet handled, then closes the transport's side.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from abc import abstractmethod
from collections.abc import Sequence
from typing import Any, ClassVar

from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from dronecommon.messaging.base import (
    Handler,
    MessageAlreadySettledError,
    MessageReceiver,
    ReceivedMessage,
)
from dronecommon.propagation import extract_trace_context
from dronecommon.telemetry import traced_only_if_sampled

logger = logging.getLogger("dronecommon.messaging")

_TRACER_NAME = "dronecommon.messaging"


class PullReceiver(MessageReceiver):
    """The receive loop both transports share: bounded concurrency, tracing, shutdown.

    Subclasses fetch locked messages (:meth:`_fetch`), keep their locks alive while handlers run
    (:meth:`_track` / :meth:`_untrack`) and open/close the transport (:meth:`_start` /
    :meth:`_finish`).
    """

    messaging_system: ClassVar[str] = "unknown"

    def __init__(
        self,
        *,
        queue_name: str,
        max_concurrency: int,
        settle_timeout: float = 10.0,
        consumer_group: str | None = None,
    ) -> None:
        if max_concurrency < 1:
            raise ValueError("max_concurrency must be at least 1")
        self.queue_name = queue_name
        self.max_concurrency = max_concurrency
        self.settle_timeout = settle_timeout
        self.consumer_group = consumer_group
        self._inflight: set[asyncio.Task[None]] = set()
        self._stopping = asyncio.Event()
        self._stopped = asyncio.Event()
        self._grace_deadline: float | None = None
        self._started = False
        self._running = False

    @property
    def in_flight(self) -> int:
        """How many handlers are running now."""
        return len(self._inflight)

    # -- transport hooks ------------------------------------------------------------------------

    async def _start(self) -> None:
        """Open what receiving needs (called at the start of :meth:`run`)."""

    async def _finish(self) -> None:
        """Close what :meth:`_start` opened (called when :meth:`run` ends)."""

    @abstractmethod
    async def _fetch(self, max_count: int) -> Sequence[ReceivedMessage]:
        """Up to ``max_count`` locked messages, waiting at most the receive wait for the first."""

    def _track(self, message: ReceivedMessage) -> None:
        """A handler starts on ``message``: keep its lock alive."""

    def _untrack(self, message: ReceivedMessage) -> None:
        """The handler of ``message`` is done."""

    def _span_attributes(self, message: ReceivedMessage) -> dict[str, str | int]:
        system = self.messaging_system
        attributes: dict[str, str | int] = {
            "messaging.system": system,
            "messaging.operation.type": "process",
            "messaging.operation.name": "process",
            "messaging.destination.name": self.queue_name,
            "messaging.message.id": message.message_id,
            "messaging.message.body.size": len(message.body),
            f"messaging.{system}.message.delivery_count": message.delivery_count,
        }
        if self.consumer_group:
            attributes["messaging.consumer.group.name"] = self.consumer_group
        if message.enqueued_at is not None:
            attributes[f"messaging.{system}.message.enqueued_time"] = int(
                message.enqueued_at.timestamp()
            )
        return attributes

    # -- the loop -------------------------------------------------------------------------------

    async def run(self, handler: Handler) -> None:
        if self._started:
            raise RuntimeError("a receiver runs once; create a new one")
        self._started = True
        self._running = True
        fetch: asyncio.Task[Sequence[ReceivedMessage]] | None = None
        stop_waiter = asyncio.create_task(self._stopping.wait())
        try:
            await self._start()
            failures = 0
            while not self._stopping.is_set():
                if len(self._inflight) >= self.max_concurrency:
                    await asyncio.wait(
                        {*self._inflight, stop_waiter}, return_when=asyncio.FIRST_COMPLETED
                    )
                    continue
                fetch = asyncio.create_task(self._fetch(self.max_concurrency - len(self._inflight)))
                await asyncio.wait({fetch, stop_waiter}, return_when=asyncio.FIRST_COMPLETED)
                if not fetch.done():
                    break  # stopping while a receive is outstanding: shutdown deals with it
                done, fetch = fetch, None
                try:
                    batch = done.result()
                except Exception:
                    failures += 1
                    delay = min(5.0, 0.1 * 2 ** min(failures, 6)) * random.uniform(0.5, 1.0)  # noqa: S311
                    logger.warning(
                        "receiving from %s failed; retrying in %.2fs",
                        self.queue_name,
                        delay,
                        exc_info=True,
                    )
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(delay):
                            await self._stopping.wait()
                    continue
                failures = 0
                for message in batch:
                    if self._stopping.is_set():
                        await self._give_back(message)
                    else:
                        self._spawn(handler, message)
        finally:
            stop_waiter.cancel()
            try:
                await self._shutdown(fetch)
            finally:
                await asyncio.gather(stop_waiter, return_exceptions=True)
                self._running = False
                self._stopped.set()

    async def stop(self, grace: float) -> None:
        loop = asyncio.get_running_loop()
        if self._grace_deadline is None:
            self._grace_deadline = loop.time() + max(0.0, grace)
        self._stopping.set()
        if self._running:
            await self._stopped.wait()

    def _spawn(self, handler: Handler, message: ReceivedMessage) -> None:
        task = asyncio.create_task(
            self._dispatch(handler, message), name=f"{self.queue_name}:{message.message_id}"
        )
        self._inflight.add(task)
        task.add_done_callback(self._inflight.discard)

    async def _dispatch(self, handler: Handler, message: ReceivedMessage) -> None:
        tracer = trace.get_tracer(_TRACER_NAME)
        self._track(message)
        try:
            with tracer.start_as_current_span(
                f"{self.queue_name} process",
                context=extract_trace_context(message.properties),
                kind=SpanKind.CONSUMER,
                attributes=self._span_attributes(message),
                record_exception=False,
                set_status_on_exception=False,
            ) as span:
                try:
                    with traced_only_if_sampled():
                        await handler(message)
                except asyncio.CancelledError:
                    span.set_status(Status(StatusCode.ERROR, "handler cancelled at shutdown"))
                    await self._abandon_unsettled(message, "handler cancelled at shutdown")
                    raise
                except Exception as exc:
                    span.record_exception(exc)
                    span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))
                    logger.exception(
                        "handler failed on message %s (delivery %d) from %s",
                        message.message_id,
                        message.delivery_count,
                        self.queue_name,
                    )
                    await self._abandon_unsettled(message, "handler raised")
                else:
                    if not message.settled:
                        logger.warning(
                            "handler returned without settling message %s from %s; abandoning it",
                            message.message_id,
                            self.queue_name,
                        )
                        await self._abandon_unsettled(message, "handler did not settle")
                finally:
                    if message.settlement is not None:
                        span.set_attribute(
                            f"messaging.{self.messaging_system}.disposition_status",
                            message.settlement,
                        )
        finally:
            self._untrack(message)

    async def _abandon_unsettled(self, message: ReceivedMessage, why: str) -> None:
        if message.settled:
            return
        try:
            async with asyncio.timeout(self.settle_timeout):
                await message.abandon()
        except MessageAlreadySettledError:
            pass
        except Exception:
            logger.warning(
                "could not abandon message %s (%s); it is redelivered when its lock expires",
                message.message_id,
                why,
                exc_info=True,
            )

    async def _give_back(self, message: ReceivedMessage) -> None:
        try:
            async with asyncio.timeout(self.settle_timeout):
                await message._release()
        except Exception:
            logger.warning(
                "could not release message %s at shutdown; it is redelivered when its lock expires",
                message.message_id,
                exc_info=True,
            )

    async def _shutdown(self, fetch: asyncio.Task[Sequence[ReceivedMessage]] | None) -> None:
        loop = asyncio.get_running_loop()
        deadline = self._grace_deadline if self._grace_deadline is not None else loop.time()
        pending: set[asyncio.Task[Any]] = set(self._inflight)
        if fetch is not None:
            pending.add(fetch)
        if pending:
            _, late = await asyncio.wait(pending, timeout=max(0.0, deadline - loop.time()))
            for task in late:
                task.cancel()
            if late:
                # Cancelled handlers abandon their messages on the way out.
                await asyncio.wait(late, timeout=self.settle_timeout + 1.0)
        if (
            fetch is not None
            and fetch.done()
            and not fetch.cancelled()
            and fetch.exception() is None
        ):
            for message in fetch.result():
                await self._give_back(message)
        try:
            await self._finish()
        except Exception:
            logger.warning("closing the receiver of %s failed", self.queue_name, exc_info=True)
