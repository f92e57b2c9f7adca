"""Start-up work, retried in the background until it succeeds: indexes, seeding, the lease log;
then, for the life of the process, the lease log re-read and compacted every refresh interval
(``compaction.py``).

The service answers from the first moment (``/healthz``; ``/readyz`` names what is missing), so a
store that is down at start-up delays readiness instead of crashing the process.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time

import pymongo

from dronecommon.domain import utcnow
from dronecommon.server import settle_heap

from .repository import SchedulerRepository
from .service import Scheduler

logger = logging.getLogger("dronescheduler.startup")


class Startup:
    def __init__(
        self,
        scheduler: Scheduler,
        repository: SchedulerRepository,
        *,
        timeout: float,
        refresh_interval: float = 120.0,
    ) -> None:
        self.scheduler = scheduler
        self.repository = repository
        self.timeout = timeout
        self.refresh_interval = refresh_interval
        self.error = "starting"
        self.done = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="dronescheduler-startup")

    async def wait(self, seconds: float) -> None:
        """Wait up to ``seconds`` for start-up to finish."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.done.wait(), seconds)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def check(self) -> None:
        """Readiness: the fleet is seeded and its state loaded."""
        if not self.done.is_set():
            raise RuntimeError(f"fleet not loaded yet: {self.error}")

    async def _run(self) -> None:
        delay = 0.5
        while True:
            try:
                await self._once()
            except Exception as exc:  # any failure: report it and try again
                self.error = f"{type(exc).__name__}: {exc}"
                logger.warning("start-up failed, retrying in %.1f s: %s", delay, self.error)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)
            else:
                self.error = ""
                settle_heap()  # the fleet and its indexes live as long as the process
                self.done.set()
                break
        while True:
            # Jittered, so replicas started together do not read the log at the same moments.
            await asyncio.sleep(self.refresh_interval * random.uniform(0.9, 1.1))  # noqa: S311
            await self.refresh()

    async def refresh(self) -> None:
        """Re-read the lease log and delete what it no longer needs (failures are logged: the
        next round tries again, and claims verify knowledge that grew old meanwhile)."""
        started = time.perf_counter()
        try:
            with pymongo.timeout(self.timeout):
                read, deleted = await self.scheduler.refresh()
        except Exception as exc:
            logger.warning("reading the lease log failed: %s: %s", type(exc).__name__, exc)
            return
        logger.info(
            "lease log read: %d generations of %d drones, %d superseded ones deleted",
            read.leases,
            read.drones,
            deleted,
            extra={
                "leases": read.leases,
                "drones": read.drones,
                "leasesDeleted": deleted,
                "refreshMs": round((time.perf_counter() - started) * 1000, 1),
            },
        )

    async def _once(self) -> None:
        fleet = self.scheduler.fleet
        with pymongo.timeout(self.timeout):
            started = time.perf_counter()
            await self.repository.ensure_indexes()
            indexed = time.perf_counter()
            seeded = await self.repository.seed(fleet, utcnow())
            seeded_at = time.perf_counter()
            read = await self.scheduler.load()
            loaded = time.perf_counter()
        logger.info(
            "fleet ready: %d drones (%d inserted now), %d leases read",
            len(fleet.drones),
            seeded.inserted,
            read.leases,
            extra={
                "drones": len(fleet.drones),
                "dronesInserted": seeded.inserted,
                "alreadySeeded": seeded.already_seeded,
                "leases": read.leases,
                "indexesMs": round((indexed - started) * 1000, 1),
                "seedMs": round((seeded_at - indexed) * 1000, 1),
                "loadMs": round((loaded - seeded_at) * 1000, 1),
            },
        )
