"""The senders: take due items from the outbox under a lease, send, and settle each one.

A process runs one :class:`Dispatcher` with up to ``NOTIFIER_OUTBOX__CONCURRENCY`` sends at once.
It claims when this process's intake has enqueued items (:meth:`Dispatcher.wake`), when a send
ends, and every ``poll_interval`` otherwise (items due for a retry, items another replica
enqueued), as many due items as it has free slots (``claim.lua``: each claim holds the item for
``lease_seconds`` under a fencing token), sends each within ``send_timeout`` (less than half the
lease) and settles it:

- sent → ``sent`` with the provider's reference;
- :class:`~notifier.channels.PermanentSendError` → ``failed`` at once (logged);
- any other failure → retried at ``now + backoff`` (exponential from ``backoff_base``, capped at
  ``backoff_max``, with equal jitter: between half and all of it), or ``failed`` (logged) once
  the item has had ``max_attempts`` attempts or the next one would come more than ``max_age``
  after the event.

**Stopping (SIGTERM).** No new claims; sends in flight get ``shutdown_grace`` to finish and be
settled; a send still running then is cancelled and its item handed back (due now, the attempt
not counted) for the next sender. **Dying (kill -9).** The items it held stay leased until their
lease ends; then any sender's next claim puts them back and sends them again.

So an item is sent once, except when a process dies (or a Redis outage stops the "sent" mark)
between the provider's acceptance and the mark: then it is sent again. That window lasts one
round trip to Redis; the receiver can drop the repeat by its Message-ID / webhook-id, and ACS
Email by its operation id.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import os
import random
import socket
import uuid
from collections.abc import Callable, Mapping

from redis.exceptions import RedisError

from dronecommon.telemetry import untraced

from .channels import PermanentSendError, Sender
from .outbox import Outbox
from .records import Channel, Item
from .settings import OutboxSettings

logger = logging.getLogger("notifier.sender")

SETTLE_ATTEMPTS = 5


def backoff(attempts: int, base: float, cap: float, jitter: float) -> float:
    """The wait after the ``attempts``-th failed attempt: ``base * 2**(attempts - 1)`` capped at
    ``cap``, times ``jitter`` (drawn in [0.5, 1]): each wait is at least as long as the one before
    until the cap."""
    return min(cap, base * 2.0 ** min(max(attempts, 1) - 1, 30)) * jitter


class Dispatcher:
    def __init__(
        self,
        outbox: Outbox,
        channels: Mapping[Channel, Sender],
        settings: OutboxSettings,
        *,
        clock: Callable[[], dt.datetime],
    ) -> None:
        self.outbox = outbox
        self.channels = channels
        self.settings = settings
        self.clock = clock
        self.name = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.error: BaseException | None = None
        self._inflight: dict[asyncio.Task[None], Item] = {}
        self._stopping = asyncio.Event()
        self._wake = asyncio.Event()

    # --- the loop ----------------------------------------------------------------------------

    async def run(self) -> None:
        failures = 0
        while not self._stopping.is_set():
            # Cleared before the claim: a wake-up during it (a slot freed, an item enqueued by
            # this process) cuts the next pause short.
            self._wake.clear()
            free = self.settings.concurrency - len(self._inflight)
            claimed: list[Item] = []
            if free > 0:
                try:
                    with untraced():  # a poll, most of them empty: no trace of its own
                        claimed = await self.outbox.claim(
                            free, self.name, self.clock(), self.settings.lease_seconds
                        )
                    failures, self.error = 0, None
                except Exception as exc:  # Redis away, or an item it cannot read: keep going
                    failures += 1
                    self.error = exc
                    logger.warning("claiming failed (attempt %d)", failures, exc_info=True)
                    await self._pause(min(10.0, 0.2 * 2 ** min(failures, 6)))
                    continue
            for item in claimed:
                task = asyncio.create_task(self._deliver(item), name=f"notify-{item.id}")
                self._inflight[task] = item
                task.add_done_callback(self._finished)
            if claimed and len(claimed) == free:
                continue  # there may be more due now
            await self._pause(self.settings.poll_interval)

    def _finished(self, task: asyncio.Task[None]) -> None:
        item = self._inflight.pop(task, None)
        if not task.cancelled() and task.exception() is not None:
            # Its lease brings it back; the error must not end the loop or go unseen.
            logger.error(
                "notification %s: send failed", item and item.id, exc_info=task.exception()
            )
        self._wake.set()

    def wake(self) -> None:
        """Claim now: this process has just enqueued items (other replicas find them when they
        next poll)."""
        self._wake.set()

    async def _pause(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout=seconds)

    # --- one item ----------------------------------------------------------------------------

    async def _deliver(self, item: Item) -> None:
        channel = self.channels.get(item.channel)
        try:
            if channel is None:
                raise PermanentSendError(f"the {item.channel.value} channel is off")
            async with asyncio.timeout(self.settings.send_timeout):
                reference = await channel.send(item, self.clock())
        except asyncio.CancelledError:
            await self._settle(item, "back", note="handed back at shutdown")
            raise
        except PermanentSendError as exc:
            logger.error("notification %s to %s failed: %s", item.id, item.to, exc)
            await self._settle(item, "failed", note=str(exc))
        except Exception as exc:
            reason = str(exc) or repr(exc)
            if isinstance(exc, TimeoutError):
                reason = f"no answer in {self.settings.send_timeout:g}s"
            await self._retry_or_fail(item, reason)
        else:
            await self._settle(item, "sent", note=reference)
            logger.info("notification %s sent to %s (%s)", item.id, item.to, item.event)

    async def _retry_or_fail(self, item: Item, reason: str) -> None:
        now = self.clock()
        delay = backoff(
            item.attempts,
            self.settings.backoff_base,
            self.settings.backoff_max,
            random.uniform(0.5, 1.0),  # noqa: S311 - jitter, not a secret
        )
        due = now + dt.timedelta(seconds=delay)
        deadline = item.event_at + dt.timedelta(seconds=self.settings.max_age)
        if item.attempts >= self.settings.max_attempts or due > deadline:
            logger.error(
                "notification %s to %s failed after %d attempt(s): %s",
                item.id,
                item.to,
                item.attempts,
                reason,
            )
            await self._settle(item, "failed", note=f"gave up: {reason}")
            return
        logger.warning(
            "notification %s to %s: attempt %d failed (%s); next in %.1fs",
            item.id,
            item.to,
            item.attempts,
            reason,
            delay,
        )
        await self._settle(item, "retry", due=due, note=reason)

    async def _settle(
        self, item: Item, outcome: str, *, due: dt.datetime | None = None, note: str = ""
    ) -> None:
        """Record the outcome, retrying Redis briefly (within the lease). A claim taken over
        meanwhile, or a Redis that stays away, leaves the item to its lease."""
        for attempt in range(SETTLE_ATTEMPTS):
            try:
                held = await self.outbox.settle(item, outcome, self.clock(), due=due, note=note)
            except (RedisError, OSError):
                if attempt + 1 == SETTLE_ATTEMPTS:
                    logger.error("notification %s: could not record %s", item.id, outcome)
                    return
                await asyncio.sleep(0.2 * 2**attempt)
                continue
            if not held:
                logger.warning(
                    "notification %s: its lease ran out before it was settled (%s)",
                    item.id,
                    outcome,
                )
            return

    # --- stopping ----------------------------------------------------------------------------

    async def stop(self, task: asyncio.Task[None]) -> None:
        """Claim nothing more, let sends finish within the grace, hand back the rest."""
        self._stopping.set()
        self._wake.set()
        with contextlib.suppress(asyncio.CancelledError, TimeoutError):
            await asyncio.wait_for(task, timeout=5)
        pending = list(self._inflight)
        if pending:
            logger.info("waiting for %d send(s) in flight", len(pending))
            _, late = await asyncio.wait(pending, timeout=self.settings.shutdown_grace)
            for running in late:
                running.cancel()
            if late:
                await asyncio.wait(late, timeout=5)

    async def check(self) -> None:
        """Readiness: the last claim reached Redis."""
        if self.error is not None:
            raise RuntimeError(f"cannot claim notifications: {self.error!r}")
