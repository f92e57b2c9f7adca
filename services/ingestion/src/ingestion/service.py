"""The rules: who owns a request, whether it fits the service area and the account's limits,
then onto the queue, answered only once the queue has it.

- ``schedule`` (POST): the owner is the caller the token names (account and user; a different
  ``ownerId`` is 403); pickup and drop-off must lie in the service area and make a trip no
  longer than the maximum (400); the account's rate and cap must allow it (429, nothing sent).
  Then a new ``deliveryId`` (UUID4) and, when absent, ``packageId`` (UUID4) and ``pickupTime``
  (now); the owner is recorded (for reschedules and cancels) before the message is sent. With an
  ``Idempotency-Key`` the answer comes from, or is recorded in, the
  :class:`~ingestion.repository.IdempotencyStore` (a replay counts against no limit).
- ``reschedule`` (PATCH) and ``cancel`` (DELETE): only for the delivery's owner or an operator
  (anyone else: 404, as for an unknown id); the message is ``{deliveryId, ...changes}``; with an
  ``Idempotency-Key`` they are recorded like a POST (a retry is answered from the record, or
  resends the very same message).
- **Message ids name the request, not its content** (what broker-side duplicate detection drops):
  a retry of one request gets the same id, a new request a new one even when its body repeats an
  earlier one (a reschedule back to an earlier place). A delivery's id is derived from its body,
  which holds the request's own new ``deliveryId`` (and a retry under its key resends the stored
  body); a keyed reschedule or cancel's from the key's record; an unkeyed one's is random.
- Every send (:mod:`ingestion.sending`) is bounded by ``send_timeout``; a failed or late send is
  a 503 and leaves nothing that claims success: :class:`~ingestion.errors.QueueUnavailable` when
  no connection to the queue could be opened (nothing was queued, and the delivery stops counting
  against the account's cap), :class:`~ingestion.errors.QueueOutcomeUnknown` otherwise (a
  time-out or a connection lost mid-send: the queue may have taken the message, so the delivery
  keeps counting until it ends or its time runs out, and the answer says how to retry safely).
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

from dronecommon.area import ServiceArea
from dronecommon.auth.inbound import Caller
from dronecommon.domain import utcnow
from dronecommon.messaging import MessageSender

from .accounts import AccountStore, Owner
from .errors import (
    DeliveryNotFound,
    IdempotencyKeyReused,
    IdempotencyStoreUnavailable,
    OutsideServiceArea,
    OwnerMismatch,
    OwnerRequired,
    QueueUnavailable,
    RateLimited,
    RequestInProgress,
    TooManyInProgress,
    TripTooLong,
)
from .repository import IdempotencyStore, record_key
from .schemas import (
    DeliveryRequest,
    DeliveryRequestIn,
    Operation,
    PackageInfo,
    RescheduleIn,
)
from .schemas import Owner as OwnerOut
from .sending import QueueSender
from .settings import LimitSettings

logger = logging.getLogger("ingestion")

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
        """sha256 of the canonical JSON (sorted keys, no spaces) as UTF-8.

        JSON may carry lone surrogates (``"\\ud800"``), which Python parses but UTF-8 cannot
        encode; they can only sit in fields the request ignores (known fields refuse them), and
        are encoded with ``surrogatepass``: still one byte string per parsed body, and valid text
        hashes as it always did.
        """
        canonical = json.dumps(self.body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return hashlib.sha256(canonical.encode("utf-8", "surrogatepass")).hexdigest()


def message_id(delivery_id: str, operation: Operation, body: bytes) -> str:
    """The message id of a delivery request's ``body`` (unique: it holds a new ``deliveryId``)."""
    return str(uuid.uuid5(MESSAGE_NAMESPACE, f"{delivery_id}|{operation}|{body.decode()}"))


def keyed_message_id(record: str, operation: Operation) -> str:
    """The message id of the request recorded under ``record`` (its Idempotency-Key's record)."""
    return str(uuid.uuid5(MESSAGE_NAMESPACE, f"{record}|{operation}"))


def owner_of(request: DeliveryRequestIn, caller: Caller) -> Owner:
    """The request's owner: the customer the token names, or (tokens off) the body's ownerId,
    whose account is then the ownerId itself."""
    if caller.kind == "customer" and caller.user_id and caller.account_id:
        if request.owner_id is not None and request.owner_id != caller.user_id:
            raise OwnerMismatch(request.owner_id, caller.user_id)
        return Owner(user_id=caller.user_id, account_id=caller.account_id)
    if request.owner_id is None:
        raise OwnerRequired()
    return Owner(user_id=request.owner_id, account_id=request.owner_id)


def normalise(request: DeliveryRequestIn, owner: Owner) -> DeliveryRequest:
    """The request with canonical values and every server-made field filled in."""
    package = request.package_info
    return DeliveryRequest(
        delivery_id=str(uuid.uuid4()),
        owner_id=owner.user_id,
        owner=OwnerOut(user_id=owner.user_id, account_id=owner.account_id),
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
        accounts: AccountStore,
        *,
        queue_name: str,
        send_timeout: float,
        store_timeout: float,
        wait_for_owner: float,
        retry_after: int,
        area: ServiceArea,
        limits: LimitSettings,
    ) -> None:
        self._queue = QueueSender(
            sender, queue_name=queue_name, timeout=send_timeout, retry_after=retry_after
        )
        self._store = store
        self._accounts = accounts
        self._area = area
        self._limits = limits
        self._store_timeout = store_timeout
        self._wait_for_owner = wait_for_owner
        self._retry_after = retry_after

    # -- the three operations -------------------------------------------------------------------

    async def schedule(
        self,
        request: DeliveryRequestIn,
        caller: Caller,
        idempotency: IdempotencyKey | None = None,
    ) -> Accepted:
        owner = owner_of(request, caller)
        self._check_places(
            [("pickupLocation", request.pickup_location)],
            [("dropOffLocation", request.drop_off_location)],
        )
        candidate = normalise(request, owner)
        body = candidate.model_dump_json(by_alias=True).encode()
        if idempotency is None:
            await self._admit(owner, candidate.delivery_id)
            await self._deliver(owner, candidate.delivery_id, body)
            return Accepted(body, candidate.delivery_id)
        return await self._send_once("delivery", body, idempotency, owner)

    async def reschedule(
        self,
        delivery_id: str,
        changes: RescheduleIn,
        caller: Caller,
        idempotency: IdempotencyKey | None = None,
    ) -> bool:
        """Queue the change; True when the answer is a replay for the Idempotency-Key."""
        await self._check_owner(delivery_id, caller)
        places = [
            (name, text)
            for name, text in (
                ("pickupLocation", changes.pickup_location),
                ("dropOffLocation", changes.drop_off_location),
            )
            if text is not None
        ]
        self._check_places(places)
        fields = changes.model_dump(mode="json", by_alias=True, exclude_none=True)
        body = orjson.dumps({"deliveryId": delivery_id, **fields})
        if idempotency is None:
            await self._queue.send("reschedule", delivery_id, body, str(uuid.uuid4()))
            return False
        return (await self._send_once("reschedule", body, idempotency)).replayed

    async def cancel(
        self, delivery_id: str, caller: Caller, idempotency: IdempotencyKey | None = None
    ) -> bool:
        """Queue the cancel; True when the answer is a replay for the Idempotency-Key."""
        await self._check_owner(delivery_id, caller)
        body = orjson.dumps({"deliveryId": delivery_id})
        if idempotency is None:
            await self._queue.send("cancel", delivery_id, body, str(uuid.uuid4()))
            return False
        return (await self._send_once("cancel", body, idempotency)).replayed

    # -- ownership, the service area, the account's limits -------------------------------------

    async def _check_owner(self, delivery_id: str, caller: Caller) -> None:
        """Only the owner (or an operator) learns that the delivery exists."""
        owner = await self._accounts.owner_of(delivery_id)
        if owner is None or not caller.may_access(owner.user_id, owner.account_id):
            raise DeliveryNotFound(delivery_id)

    def _check_places(self, *groups: list[tuple[str, str]]) -> None:
        """Every place in the service area; a pickup and drop-off given together make a trip
        no longer than the maximum."""
        area = self._area
        outside: list[tuple[str, str]] = []
        points = {}
        for name, text in (place for group in groups for place in group):
            point, base, miles = area.place(text)
            points[name] = point
            if miles > area.radius_miles:
                message = (
                    f"{text!r} is {miles:,.1f} miles from the nearest drone base "
                    f"({base.name}); the service area reaches {area.radius_miles:g} miles"
                )
                outside.append((name, message))
        if outside:
            raise OutsideServiceArea(outside, area.radius_miles)
        if {"pickupLocation", "dropOffLocation"} <= points.keys():
            trip = area.shortest_trip(points["pickupLocation"], points["dropOffLocation"])
            if trip > area.max_trip_miles:
                raise TripTooLong(trip, area.max_trip_miles)

    async def _admit(self, owner: Owner, delivery_id: str) -> None:
        verdict = await self._accounts.admit(owner, delivery_id)
        if verdict.state == "rate":
            limits = self._limits
            raise RateLimited(verdict.wait_seconds, limits.requests_per_minute, limits.burst)
        if verdict.state == "busy":
            raise TooManyInProgress(verdict.count, self._limits.in_progress_retry_after)

    async def _deliver(
        self, owner: Owner, delivery_id: str, body: bytes, *, keyed: bool = False
    ) -> None:
        """Record the owner, then send; a send that surely queued nothing stops the delivery
        counting (one whose outcome is unknown may be under way: it counts until it ends)."""
        await self._accounts.record_owner(delivery_id, owner)
        sent_as = message_id(delivery_id, "delivery", body)
        try:
            await self._queue.send("delivery", delivery_id, body, sent_as, keyed=keyed)
        except QueueUnavailable:
            try:
                await self._accounts.ended(owner.account_id, delivery_id)
            except Exception:
                logger.exception(
                    "%s: could not stop counting it after the failed send", delivery_id
                )
            raise

    # -- Idempotency-Key ------------------------------------------------------------------------

    async def _send_once(
        self,
        operation: Operation,
        body: bytes,
        idempotency: IdempotencyKey,
        owner: Owner | None = None,
    ) -> Accepted:
        """Send ``body`` once per Idempotency-Key; ``owner`` (a new delivery) is admitted
        against its account's limits and recorded first."""
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
            if owner is not None:
                await self._admit(owner, delivery_id)
                await self._deliver(owner, delivery_id, body, keyed=True)
            else:
                sent_as = keyed_message_id(key, operation)
                await self._queue.send(operation, delivery_id, body, sent_as, keyed=True)
        except Exception:
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


def _delivery_id(body: bytes) -> str:
    return str(orjson.loads(body)["deliveryId"])
