"""Who flies the fleet: one process at a time, by a lease in Redis.

Two simulators flying the same drones would publish every fix twice and split the delivery events
between them (one consumer group), each missing half. So a process flies only while it holds the
lease ``<p>:leader`` (renewed every third of ``SIMULATOR_LEADER_TTL``): on taking it, it loads every
stored flight and starts the tick loop, the work loop and the delivery events reader (consumer
``simulator`` of the group: a successor first gets the events its predecessor read and did not
acknowledge). A process that loses the lease stops them and waits its turn again; one that stops
saves its state and gives the lease up at once. A killed one (``kill -9``) holds it until its TTL
ends; the next one then resumes every flight where the clock says it is.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import uuid
from collections.abc import Callable

from dronecommon.events import EventReader

from .engine import Engine
from .store import FlightStore

logger = logging.getLogger("simulator.pilot")


class LeaseLostError(RuntimeError):
    pass


class Pilot:
    def __init__(
        self,
        engine: Engine,
        store: FlightStore,
        readers: Callable[[], EventReader],
        *,
        leader_ttl: float,
    ) -> None:
        self.engine = engine
        self.store = store
        self.readers = readers  # a fresh reader for each turn at the controls
        self.leader_ttl = leader_ttl
        self.holder = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.leading = False
        self.error: BaseException | None = None
        self._stop = asyncio.Event()

    async def run(self) -> None:
        """Wait for the lease, fly while holding it, again and again until :meth:`stop`."""
        while not self._stop.is_set():
            try:
                if await self.store.hold_lease(self.holder, self.leader_ttl):
                    await self._lead()
            except LeaseLostError:
                logger.warning("lost the lease: another simulator flies the fleet now")
            except Exception as exc:
                self.error = exc
                logger.warning("flying stopped; trying again", exc_info=True)
            finally:
                self.leading = False
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), timeout=self.leader_ttl / 3)

    async def _lead(self) -> None:
        self.engine.load(await self.store.load())
        self.leading = True
        self.error = None
        logger.info("flying the fleet (lease %s)", self.holder)
        stop = asyncio.Event()
        reader = self.readers()
        tasks = [
            asyncio.create_task(self.engine.run_ticks(stop), name="simulator-ticks"),
            asyncio.create_task(self.engine.run_work(stop), name="simulator-work"),
            asyncio.create_task(reader.run(self.engine.apply), name="simulator-events"),
        ]
        renew = asyncio.create_task(self._renew(), name="simulator-lease")
        try:
            done, _ = await asyncio.wait(
                [*tasks, renew, asyncio.create_task(self._stop.wait())],
                return_when=asyncio.FIRST_COMPLETED,
            )
            for task in done:
                if task is not renew and task in tasks and task.exception() is not None:
                    raise task.exception()  # type: ignore[misc]
            if renew in done:
                renew.result()
        finally:
            stop.set()
            reader.stop()
            renew.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                    await asyncio.wait_for(task, timeout=5)
            with contextlib.suppress(Exception):
                await self.engine.flush()

    async def _renew(self) -> None:
        while True:
            await asyncio.sleep(self.leader_ttl / 3)
            try:
                held = await self.store.hold_lease(self.holder, self.leader_ttl)
            except Exception:
                logger.warning("could not renew the lease", exc_info=True)
                continue  # still ours until the TTL ends; a later renewal may work
            if not held:
                raise LeaseLostError(self.holder)

    async def stop(self, task: asyncio.Task[None]) -> None:
        """Stop flying, save, and give the lease up for the next process."""
        self._stop.set()
        with contextlib.suppress(asyncio.CancelledError, TimeoutError):
            await asyncio.wait_for(task, timeout=15)
        with contextlib.suppress(Exception):
            await self.store.leave_lease(self.holder)

    async def check(self) -> None:
        """Readiness: flying, or waiting for the lease another process holds; not failing."""
        if self.error is not None and not self.leading:
            raise RuntimeError(f"not flying: {self.error!r}")
