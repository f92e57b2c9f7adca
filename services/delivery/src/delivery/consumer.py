"""The telemetry consumer: a background worker in every replica (competing consumers of the
consumer group ``delivery`` on the fixes stream).

Each batch of fixes is grouped by delivery. One pipeline reads every delivery of the batch (and
keeps each drone's latest fix); the fixes of the delivery's drone are folded into its tracking
state (:func:`delivery.live.fold`: ordered by ``seq``, older and repeated fixes dropped, phase
changes to the history, ``PickedUp`` once, ``EtaChanged`` past the threshold); a second pipeline
writes every update with a compare-and-set on the delivery's revision and tracking version. An
update that lost the race to another replica is read and folded again; a fix that changes nothing
(a redelivery) writes nothing. Fixes without a delivery, for an unknown one, a Completed or
Cancelled one, or from a drone that is not the delivery's are ignored (the drone's latest fix is
still kept). The batch is acknowledged (by the stream) only after these writes.

Records are parsed once per revision and kept in a bounded cache, so a steady stream of fixes
costs one small read and one write per delivery and batch.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import random
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from dronecommon.domain import TERMINAL_STAGES
from dronecommon.fixes import Fix, FixConsumer
from dronecommon.telemetry import untraced

from . import tracking
from .live import Live, LiveRules, fold
from .livestore import APPLIED, CONFLICT, LiveRead, LiveStore, LiveWrite
from .records import DeliveryRecord

logger = logging.getLogger("delivery.consumer")

_TERMINAL = frozenset(stage.value for stage in TERMINAL_STAGES)


class LiveContendedError(RuntimeError):
    """Other replicas kept updating a delivery; the batch is left to be delivered again."""


@dataclass(slots=True)
class ConsumerStats:
    fixes: int = 0  # received
    applied: int = 0  # folded into a delivery's state
    ignored: int = 0  # no delivery, unknown, closed, or another drone's
    superseded: int = 0  # older than (or the same as) the fix already applied
    conflicts: int = 0  # writes retried because another replica wrote first


class TelemetryConsumer:
    """Folds batches of fixes into the deliveries' tracking state (see the module docstring)."""

    def __init__(
        self,
        store: LiveStore,
        rules: LiveRules,
        estimates: tracking.Estimates,
        clock: Callable[[], dt.datetime],
        *,
        max_attempts: int = 8,
        cache_size: int = 20_000,
    ) -> None:
        self.store = store
        self.rules = rules
        self.estimates = estimates
        self.clock = clock
        self.max_attempts = max_attempts
        self.cache_size = cache_size
        self.stats = ConsumerStats()
        # Per delivery: the rev, the record and its plan's deliveryETA (parsed once per rev).
        self._records: OrderedDict[str, tuple[str, DeliveryRecord, dt.datetime]] = OrderedDict()

    async def handle(self, fixes: Sequence[Fix]) -> None:
        """Apply a batch (raises when it could not be written: the stream delivers it again)."""
        self.stats.fixes += len(fixes)
        groups: dict[str, list[Fix]] = {}
        drones: dict[str, Fix] = {}
        for fix in fixes:
            latest = drones.get(fix.drone_id)
            if latest is None or fix.seq > latest.seq:
                drones[fix.drone_id] = fix
            if fix.delivery_id is None:
                self.stats.ignored += 1
            else:
                groups.setdefault(fix.delivery_id, []).append(fix)
        for group in groups.values():
            if len(group) > 1:
                group.sort(key=_seq)
        pending = list(groups)
        keep: Sequence[Fix] = list(drones.values())
        for attempt in range(self.max_attempts):
            wanted = [(delivery_id, self._cached_rev(delivery_id)) for delivery_id in pending]
            reads = await self.store.read(wanted, keep)
            keep = ()
            writes = [
                write
                for delivery_id, read in zip(pending, reads, strict=True)
                if (write := self._update(delivery_id, read, groups[delivery_id])) is not None
            ]
            outcomes = await self.store.apply(writes)
            pending = []
            for write, outcome in zip(writes, outcomes, strict=True):
                if outcome == APPLIED:
                    self.stats.applied += len(write.trail)
                elif outcome == CONFLICT:
                    pending.append(write.delivery_id)
                else:
                    self.stats.ignored += len(groups[write.delivery_id])
            if not pending:
                return
            self.stats.conflicts += len(pending)
            await asyncio.sleep(random.uniform(0, 0.005 * (attempt + 1)))  # noqa: S311 - jitter
        raise LiveContendedError(f"{len(pending)} deliveries kept changing: {pending[:5]}")

    def _cached_rev(self, delivery_id: str) -> str:
        cached = self._records.get(delivery_id)
        return cached[0] if cached is not None else ""

    def _record(self, delivery_id: str, read: LiveRead) -> tuple[DeliveryRecord, dt.datetime]:
        """The delivery's record and its plan's deliveryETA (the EtaChanged baseline)."""
        if read.state is None:
            _, record, planned = self._records[delivery_id]
            self._records.move_to_end(delivery_id)
            return record, planned
        record = DeliveryRecord.model_validate_json(read.state)
        when = tracking.timing(record.plan, record.pickup, record.dropoff, self.estimates)
        self._records[delivery_id] = (read.rev, record, when.delivery_eta)
        self._records.move_to_end(delivery_id)
        if len(self._records) > self.cache_size:
            self._records.popitem(last=False)
        return record, when.delivery_eta

    def _update(
        self, delivery_id: str, read: LiveRead | None, fixes: list[Fix]
    ) -> LiveWrite | None:
        if read is None or read.stage in _TERMINAL:
            self.stats.ignored += len(fixes)
            if read is None:
                self._records.pop(delivery_id, None)
            return None
        record, planned = self._record(delivery_id, read)
        mine = [fix for fix in fixes if fix.drone_id == record.drone_id]
        self.stats.ignored += len(fixes) - len(mine)
        if not mine:
            return None
        live = Live.parse(read.live)
        folded = fold(record, live, mine, self.rules, planned)
        if folded is None:
            self.stats.superseded += len(mine)
            return None
        self.stats.superseded += len(mine) - len(folded.applied)
        stage: tuple[str, str] | None = None
        if folded.stage_changed:
            status = tracking.status(record, self.clock(), self.estimates, folded.live, self.rules)
            stage = (status.stage.value, status.model_dump_json(by_alias=True))
        return LiveWrite(
            delivery_id=delivery_id,
            rev=read.rev,
            lver=read.lver,
            live=folded.live.dumps(),
            trail=folded.applied,
            history=folded.history,
            stage=stage,
            events=folded.events,
        )


def _seq(fix: Fix) -> int:
    return fix.seq


class ConsumerWorker:
    """Runs a :class:`TelemetryConsumer` on the fixes stream until the app stops."""

    def __init__(
        self, source: FixConsumer, consumer: TelemetryConsumer, *, shutdown_grace: float
    ) -> None:
        self.source = source
        self.consumer = consumer
        self.shutdown_grace = shutdown_grace
        self._busy = False
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="delivery-telemetry")

    async def _run(self) -> None:
        async def handle(fixes: Sequence[Fix]) -> None:
            self._busy = True
            try:
                await self.consumer.handle(fixes)
            finally:
                self._busy = False

        with untraced():
            await self.source.run(handle)

    async def stop(self) -> None:
        """Stop reading; a batch in hand may finish within the grace (else it stays pending and
        is delivered again)."""
        task = self._task
        if task is None:
            return
        await self.source.stop()
        if self._busy:
            with contextlib.suppress(TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(asyncio.shield(task), timeout=self.shutdown_grace)
        if not task.done():
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await self.source.close()

    def check(self) -> None:
        """Readiness: the worker is running."""
        task = self._task
        if task is None or task.done():
            error = task.exception() if task is not None and not task.cancelled() else None
            raise RuntimeError(f"the telemetry consumer is not running ({error!r})")


__all__ = ["ConsumerStats", "ConsumerWorker", "LiveContendedError", "TelemetryConsumer"]
