"""The message handler: parse, run the operation, classify the failure, settle.

Every message is settled explicitly:

- **complete** when the operation succeeded (or found nothing left to do);
- **dead-letter at once** on a permanent failure — malformed body, unknown operation, a
  downstream 4xx other than 401/403/408/409/429 — with a reason and a description;
- **abandon after a backoff** on a transient failure (the HTTP client has already retried within
  its budget): the handler holds the message, lock renewed, for
  ``min(abandon_backoff_max, abandon_backoff_base * 2**(deliveries-1))`` (jittered, at least the
  downstream's Retry-After), then abandons it so any replica may take it again. Holding instead of
  abandoning at once keeps a down backend from burning through the delivery count in seconds.
  A downstream 401/403 is handled the same way, logged as an ERROR (the workflow's credentials
  need an operator, the message does not);
- **dead-letter with MaxDeliveryCountExceeded** when a transient failure happens on the last
  allowed delivery.

A ``delivery`` that gives up after its drone was assigned but before its delivery record existed
releases the drone first (compensation), whether this attempt or an earlier one booked it; if the
release itself fails, the message is abandoned instead (when deliveries are left) so the
compensation is retried.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import time
from collections.abc import Awaitable, Callable

from pydantic import ValidationError
from redis.exceptions import RedisError

from dronecommon.httpclient import TransientHTTPError
from dronecommon.messaging import MAX_DELIVERY_COUNT_EXCEEDED, MessagingError, ReceivedMessage

from .errors import CredentialsRefused, PermanentError, TransientError
from .schemas import CancelMessage, DeliveryMessage, RescheduleMessage
from .service import Progress, Workflow
from .settings import WorkflowSettings

logger = logging.getLogger("workflow.consumer")

OPERATIONS = ("delivery", "reschedule", "cancel")
_TRANSIENT = (TransientError, TransientHTTPError, RedisError, OSError, TimeoutError)


def _validation_summary(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors()[:5]:
        where = ".".join(str(p) for p in error["loc"]) or "body"
        parts.append(f"{where}: {error['msg']}")
    return "; ".join(parts)


def _parse(operation: str, message: ReceivedMessage) -> object:
    content_type = (message.content_type or "application/json").lower()
    if "json" not in content_type:
        raise PermanentError("MalformedMessage", f"content type {content_type!r} is not JSON")
    try:
        body = json.loads(message.body)
    except ValueError as exc:
        raise PermanentError("MalformedMessage", f"the body is not UTF-8 JSON: {exc}") from exc
    except RecursionError as exc:  # the parser's limit: no retry will ever read it
        raise PermanentError(
            "MalformedMessage", "the body's JSON is nested too deeply to be read"
        ) from exc
    if not isinstance(body, dict):
        raise PermanentError("MalformedMessage", "the body is not a JSON object")
    models: dict[str, type[DeliveryMessage | RescheduleMessage | CancelMessage]] = {
        "delivery": DeliveryMessage,
        "reschedule": RescheduleMessage,
        "cancel": CancelMessage,
    }
    try:
        return models[operation].model_validate(body)
    except ValidationError as exc:
        raise PermanentError("InvalidMessage", _validation_summary(exc)) from exc


class Consumer:
    """``handle`` is the receiver's handler; ``stopping`` cuts backoffs short at shutdown."""

    def __init__(self, workflow: Workflow, settings: WorkflowSettings) -> None:
        self.workflow = workflow
        self.max_delivery_count = settings.queue.max_delivery_count
        self.backoff_base = settings.abandon_backoff_base
        self.backoff_max = settings.abandon_backoff_max
        self.stopping = asyncio.Event()

    async def handle(self, message: ReceivedMessage) -> None:
        operation = message.properties.get("operation", "")
        progress = Progress()
        delivery_id: str | None = None
        started = time.perf_counter()
        try:
            if operation not in OPERATIONS:
                raise PermanentError(
                    "UnknownOperation",
                    f"operation {operation!r} is not one of {', '.join(OPERATIONS)}",
                )
            request = _parse(operation, message)
            delivery_id = getattr(request, "delivery_id", None)
            result = await self._run(request, message, progress)
        except PermanentError as exc:
            logger.warning(
                "%s %s: permanent failure %s: %s",
                operation or "?",
                delivery_id or message.message_id,
                exc.reason,
                exc.description,
            )
            await self._give_up(message, delivery_id, progress, exc.reason, exc.description)
            return
        except _TRANSIENT as exc:
            await self._retry_later(message, operation, delivery_id, progress, exc)
            return
        except Exception as exc:  # a bug: never lose the message, retry it like an outage
            logger.exception("%s %s failed unexpectedly", operation, delivery_id)
            await self._retry_later(message, operation, delivery_id, progress, exc)
            return
        await self._settle(message, message.complete)
        logger.info(
            "%s %s: %s (delivery %d, %.0f ms)",
            operation,
            delivery_id,
            result,
            message.delivery_count,
            (time.perf_counter() - started) * 1000,
        )

    async def _run(self, request: object, message: ReceivedMessage, progress: Progress) -> str:
        at_ms = int(
            (message.enqueued_at.timestamp() if message.enqueued_at else time.time()) * 1000
        )
        if isinstance(request, DeliveryMessage):
            return await self.workflow.deliver(request, progress)
        if isinstance(request, RescheduleMessage):
            return await self.workflow.reschedule(request, at_ms)
        assert isinstance(request, CancelMessage)
        return await self.workflow.cancel(request, at_ms)

    async def _retry_later(
        self,
        message: ReceivedMessage,
        operation: str,
        delivery_id: str | None,
        progress: Progress,
        exc: BaseException,
    ) -> None:
        error = f"{type(exc).__name__}: {exc}"
        if message.delivery_count >= self.max_delivery_count:
            logger.error(
                "%s %s: giving up after %d deliveries: %s",
                operation,
                delivery_id,
                message.delivery_count,
                error,
            )
            await self._give_up(
                message,
                delivery_id,
                progress,
                MAX_DELIVERY_COUNT_EXCEEDED,
                f"failed on {message.delivery_count} deliveries (the maximum is "
                f"{self.max_delivery_count}); last error: {error}",
            )
            return
        delay = self.backoff(message.delivery_count, getattr(exc, "retry_after", None))
        # A refused token is an operator's problem (identity, role, audience): say so loudly, but
        # keep the message, which will pass once the credentials are fixed.
        log = logger.error if isinstance(exc, CredentialsRefused) else logger.warning
        log(
            "%s %s: transient failure on delivery %d, abandoning in %.1fs: %s",
            operation,
            delivery_id,
            message.delivery_count,
            delay,
            error,
        )
        await self._hold_then_abandon(message, delay)

    def backoff(self, delivery_count: int, retry_after: float | None) -> float:
        ceiling = min(self.backoff_max, self.backoff_base * 2.0 ** max(0, delivery_count - 1))
        delay = ceiling * random.uniform(0.5, 1.0)  # noqa: S311 - jitter, not secrecy
        if retry_after is not None:
            delay = max(delay, min(retry_after, self.backoff_max))
        return delay

    async def _hold_then_abandon(self, message: ReceivedMessage, delay: float) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(delay):
                await self.stopping.wait()
        await self._settle(message, message.abandon)

    async def _give_up(
        self,
        message: ReceivedMessage,
        delivery_id: str | None,
        progress: Progress,
        reason: str,
        description: str,
    ) -> None:
        if delivery_id is not None and message.properties.get("operation") == "delivery":
            try:
                compensated = await self.workflow.compensate(
                    delivery_id, progress, redelivered=message.delivery_count > 1
                )
            except Exception as exc:
                if message.delivery_count < self.max_delivery_count:
                    logger.warning(
                        "%s: releasing the drone failed (%s); abandoning to retry", delivery_id, exc
                    )
                    await self._hold_then_abandon(
                        message, self.backoff(message.delivery_count, None)
                    )
                    return
                description += (
                    f"; releasing its drone failed too ({type(exc).__name__}: {exc}): "
                    "the drone frees itself when its busy time ends"
                )
            else:
                if compensated is not None:
                    description += f"; {compensated}"
        await self._settle(message, lambda: message.dead_letter(reason, description[:4000]))

    @staticmethod
    async def _settle(message: ReceivedMessage, settle: Callable[[], Awaitable[None]]) -> None:
        try:
            await settle()
        except MessagingError as exc:
            # Lock lost or settlement refused: the message comes back, and handling is idempotent.
            logger.warning("could not settle message %s: %s", message.message_id, exc)
