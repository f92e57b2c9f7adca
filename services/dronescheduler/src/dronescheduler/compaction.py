"""Reading and compacting the lease log: start-up reads what the fleet holds, not its history.

The lease log keeps, for each drone, its latest generation and the generations written in the
last ``retention``; older ones are deleted. So reading the whole log — at start-up, and again
every ``refresh_interval`` by every replica — costs O(fleet) documents however many deliveries were
ever made (the history that utilization needs lives in ``assignments``, ``plans`` and
``releases``, which are never read whole).

**What may be deleted.** Generation ``g`` of a drone once ``g + 1`` exists and was written more
than ``retention`` ago; deletions take a contiguous run from the drone's oldest generation, so
what is left is a gap-free chain ending at the latest generation, which is never deleted.

**Why a deleted generation is never claimed again.** A claim inserts ``g + 1`` where ``g`` is the
generation this replica knows as the drone's latest; an insert of a deleted ``g + 1`` would
succeed. Knowledge is *confirmed* at a time ``t`` when ``g`` was then the latest (this replica
wrote it, or read it as the latest: every drone at the start of a complete read of the log, one
drone in a catch-up). Then ``g + 1`` and ``g + 2`` were written after ``t``, and ``g + 1`` is
deleted only once ``g + 2`` is ``retention`` old, i.e. not before ``t + retention`` (less the
writers' clock skew). A replica claims on knowledge confirmed within ``trust = retention / 2``
only; older knowledge is first verified against the drone's latest generation. Every replica
re-reads the log every ``refresh_interval`` (at most a quarter of the retention), so verification
happens only when those reads keep failing.
"""

from __future__ import annotations

import datetime as dt
import itertools
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from .records import Lease, lease_id
from .repository import SchedulerRepository
from .state import FleetState

logger = logging.getLogger("dronescheduler.compaction")


@dataclass(slots=True)
class LogRead:
    """One complete read of the lease log."""

    started: dt.datetime
    leases: int = 0
    drones: int = 0
    prunable: list[str] = field(default_factory=list)


def prunable(
    generations: dict[str, list[tuple[int, dt.datetime]]], cutoff: dt.datetime
) -> list[str]:
    """The ids of the generations that may be deleted: for each drone, the longest run from its
    oldest generation in which every generation's successor was written before ``cutoff``."""
    ids: list[str] = []
    for drone_id, gens in generations.items():
        gens.sort()
        for (gen, _), (_, successor_at) in itertools.pairwise(gens):
            if successor_at >= cutoff:
                break
            ids.append(lease_id(drone_id, gen))
    return ids


async def read_log(
    repository: SchedulerRepository,
    state: FleetState,
    clock: Callable[[], dt.datetime],
    *,
    retention: dt.timedelta,
    on_lease: Callable[[Lease], None] | None = None,
) -> LogRead:
    """Learn every drone's latest generation from the whole log; what may be deleted."""
    result = LogRead(started=clock())
    generations: dict[str, list[tuple[int, dt.datetime]]] = {}
    async for lease in repository.all_leases():
        state.learn(lease.drone_id, lease.gen, lease.busy_until, lease.delivery_id, clock())
        generations.setdefault(lease.drone_id, []).append((lease.gen, lease.at))
        if on_lease is not None:
            on_lease(lease)
        result.leases += 1
    # Complete: what was the latest at the start of the read is known (or newer) for every drone.
    state.refreshed_at = max(state.refreshed_at, result.started)
    result.drones = len(generations)
    result.prunable = prunable(generations, result.started - retention)
    return result


async def prune(repository: SchedulerRepository, ids: Iterable[str], *, batch: int) -> int:
    """Delete the given generations, ``batch`` at a time; how many were deleted."""
    pending = list(ids)
    deleted = 0
    for start in range(0, len(pending), batch):
        deleted += await repository.delete_leases(pending[start : start + batch])
    return deleted
