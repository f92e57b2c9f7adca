"""The rules: normalise a request, put it on the queue, answer only once the queue has it.

- ``schedule`` (POST): a new ``deliveryId`` (UUID4) and, when absent, ``packageId`` (UUID4) and
  ``pickupTime`` (now); with an ``Idempotency-Key`` the answer comes from, or is recorded in, the
  :class:`~ingestion.repository.IdempotencyStore`.
- ``reschedule`` (PATCH) and ``cancel`` (DELETE): the message is ``{deliveryId, ...changes}``; both
  are naturally idempotent (an identical retry is the identical message, with the same id).
- Every send is bounded by ``send_timeout``; a failed or late send is
  :class:`~ingestion.errors.QueueUnavailable` (a 503) and leaves nothing that claims success.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import secrets
import uuid
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any, TypeVar

import orjson
from opentelemetry import trace
from opentelemetry.trace import SpanKind

from dronecommon.domain import utcnow
from dronecommon.messaging import MessageSender, OutgoingMessage

from .errors import (
    IdempotencyKeyReused,
    IdempotencyStoreUnavailable,
    QueueUnavailable,
    RequestInProgress,
)
from .repository import IdempotencyStore, record_key
from .schemas import (
    DeliveryRequest,
    DeliveryRequestIn,
    Operation,
    PackageInfo,
    RescheduleIn,
)

logger = logging.getLogger("ingestion")
tracer = trace.get_tracer("ingestion")

#: The namespace of message ids: uuid5(MESSAGE_NAMESPACE, "<deliveryId>|<operation>|<body>").
MESSAGE_NAMESPACE = uuid.UUID("5b0f4a1e-8a55-4c1f-9a3e-6d2f1e0c7b11")

_POLL_INTERVAL = 0.02
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Accepted:
    """A 202: the body to answer, the delivery it is about, and whether it is a replay."""

    body: bytes
    delivery_id: str
    replayed: bool = False


@dataclass(frozen=True, slots=True)
class IdempotencyKey:
    """An ``Idempotency-Key`` as sent by one caller, with the body it came with."""

    caller: str
    key: str
    body: Any  # the parsed JSON

    @property
    def fingerprint(self) -> str:
        canonical = json.dumps(self.body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return hashlib.sha256(canonical.encode()).hexdigest()


def message_id(delivery_id: str, operation: Operation, body: bytes) -> str:
    """The deterministic message id of ``body`` (broker duplicate detection relies on it)."""
    return str(uuid.uuid5(MESSAGE_NAMESPACE, f"{delivery_id}|{operation}|{body.decode()}"))


def normalise(request: DeliveryRequestIn) -> DeliveryRequest:
    """The request with canonical values and every server-made field filled in."""
    package = request.package_info
    return DeliveryRequest(
        delivery_id=str(uuid.uuid4()),
        owner_id=request.owner_id,
        pickup_location=request.pickup_location,
        drop_off_location=request.drop_off_location,
        pickup_time=request.pickup_time or utcnow(),
        deadline=request.deadline or "",
        expedited=bool(request.expedited),
        confirmation_required=request.confirmation_required,
        package_info=PackageInfo(
            package_id=package.package_id or str(uuid.uuid4()),
            size=package.size,
            weight=package.weight,
            tag=package.tag,
        ),
        notify=request.notify,
    )


class IngestionService:
    def __init__(
        self,
        sender: MessageSender,
        store: IdempotencyStore,
        *,
        queue_name: str,
        send_timeout: float,
        store_timeout: float,
        wait_for_owner: float,
        retry_after: int,
    ) -> None:
        self._sender = sender
        self._store = store
        self._queue_name = queue_name
        self._send_timeout = send_timeout
        self._store_timeout = store_timeout
        self._wait_for_owner = wait_for_owner
        self._retry_after = retry_after

    # -- the three operations -------------------------------------------------------------------

    async def schedule(
        self, request: DeliveryRequestIn, idempotency: IdempotencyKey | None = None
    ) -> Accepted:
        candidate = normalise(request)
        body = candidate.model_dump_json(by_alias=True).encode()
        if idempotency is None:
            await self._send("delivery", candidate.delivery_id, body)
            return Accepted(body, candidate.delivery_id)
        return await self._schedule_once(body, idempotency)

    async def reschedule(self, delivery_id: str, changes: RescheduleIn) -> None:
        fields = changes.model_dump(mode="json", by_alias=True, exclude_none=True)
        body = orjson.dumps({"deliveryId": delivery_id, **fields})
        await self._send("reschedule", delivery_id, body)

    async def cancel(self, delivery_id: str) -> None:
        await self._send("cancel", delivery_id, orjson.dumps({"deliveryId": delivery_id}))

    # -- Idempotency-Key ------------------------------------------------------------------------

    async def _schedule_once(self, body: bytes, idempotency: IdempotencyKey) -> Accepted:
        key = record_key(idempotency.caller, idempotency.key)
        fingerprint = idempotency.fingerprint
        token = secrets.token_hex(16)
        loop = asyncio.get_running_loop()
        give_up = loop.time() + self._wait_for_owner
        while True:
            claim = await self._store_call(
                self._store.claim(key, fingerprint=fingerprint, token=token, response=body)
            )
            if claim.state == "mismatch":
                raise IdempotencyKeyReused()
            if claim.state == "done":
                return Accepted(claim.response, _delivery_id(claim.response), replayed=True)
            if claim.state == "claimed":
                break
            if loop.time() >= give_up:  # "pending": another request is sending it
                raise RequestInProgress()
            await asyncio.sleep(_POLL_INTERVAL)

        body = claim.response  # a failed earlier attempt's body is sent again, unchanged
        delivery_id = _delivery_id(body)
        try:
            await self._send("delivery", delivery_id, body)
        except QueueUnavailable:
            await self._settle_quietly(self._store.fail(key, token), "its release", delivery_id)
            raise
        await self._settle_quietly(self._store.complete(key, token), "its completion", delivery_id)
        return Accepted(body, delivery_id)

    async def _store_call(self, call: Awaitable[T]) -> T:
        try:
            async with asyncio.timeout(self._store_timeout):
                return await call
        except Exception as exc:
            logger.warning("idempotency store unavailable: %s: %s", type(exc).__name__, exc)
            raise IdempotencyStoreUnavailable(self._retry_after) from exc

    async def _settle_quietly(self, call: Awaitable[bool], what: str, delivery_id: str) -> None:
        # The send's outcome is what the client must hear; a record that cannot be written
        # expires with its lease, after which a retry resends the same message.
        try:
            async with asyncio.timeout(self._store_timeout):
                held = await call
        except Exception:
            logger.exception("idempotency record of %s: could not write %s", delivery_id, what)
            return
        if not held:
            logger.warning("idempotency record of %s: taken over before %s", delivery_id, what)

    # -- the queue ------------------------------------------------------------------------------

    async def _send(self, operation: Operation, delivery_id: str, body: bytes) -> None:
        message = OutgoingMessage(
            body=body,
            message_id=message_id(delivery_id, operation, body),
            content_type="application/json",
            properties={"operation": operation},
        )
        with tracer.start_as_current_span(
            f"{self._queue_name} send",
            kind=SpanKind.PRODUCER,
            attributes={
                "messaging.destination.name": self._queue_name,
                "messaging.operation.name": "send",
                "messaging.operation.type": "send",
                "messaging.message.id": message.message_id,
                "dronedelivery.delivery_id": delivery_id,
                "dronedelivery.operation": operation,
            },
            record_exception=False,
            set_status_on_exception=False,
        ) as span:
            try:
                async with asyncio.timeout(self._send_timeout):
                    await self._sender.send(message)
            except Exception as exc:
                span.record_exception(exc)
                span.set_status(trace.StatusCode.ERROR, f"{type(exc).__name__}: {exc}")
                logger.warning(
                    "queue %s did not take %s message %s for %s: %s: %s",
                    self._queue_name,
                    operation,
                    message.message_id,
                    delivery_id,
                    type(exc).__name__,
                    exc,
                )
                raise QueueUnavailable(self._retry_after) from exc


def _delivery_id(body: bytes) -> str:
    return str(orjson.loads(body)["deliveryId"])
