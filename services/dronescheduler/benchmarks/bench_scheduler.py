"""Seeding, start-up and assignment throughput of the drone scheduler against a real FerretDB.

    uv run python services/dronescheduler/benchmarks/bench_scheduler.py --concurrency 20 50

Starts FerretDB (SQLite) and ``python -m dronescheduler`` (the default fleet unless ``--drones``,
one uvicorn worker, JSON access logs at INFO as deployed) as child processes on free loopback
ports, and measures:

- ``start (seed)``: process start to ``/readyz`` 200 on an empty database (indexes, seeding the
  whole fleet, reading the empty lease log), and the seeding time the service logs;
- ``restart``: the same on the seeded database, after the assignment runs (the lease log is read);
- ``assign``: ``PUT /api/dronedeliveries/{new id}`` with random pickups and drop-offs in the
  service area (201 while drones last), ``--concurrency`` callers back to back for ``--seconds``;
- ``replay``: ``PUT`` of an assigned delivery again (200), ``get``: ``GET`` of one (200),
  ``replan``: ``PATCH`` of one with a new drop-off (200), ``release``: ``DELETE`` of assigned
  deliveries (204).

Every client, server and database shares this machine's CPUs: the figures are for comparing
changes, not for capacity planning.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import statistics
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
from scheduler_stack import scheduler_stack

Call = Callable[[aiohttp.ClientSession, int], Awaitable[int]]
# What the service logs when its fleet is ready.
LOGGED = ("drones", "dronesInserted", "seedMs", "loadMs")


def place(rng: random.Random) -> dict[str, float]:
    return {
        "latitude": round(rng.uniform(47.50, 47.75), 6),
        "longitude": round(rng.uniform(-122.45, -122.20), 6),
        "altitude": 0.0,
    }


def delivery(delivery_id: str, rng: random.Random) -> dict[str, Any]:
    return {
        "deliveryId": delivery_id,
        "ownerId": "bench-owner",
        "pickup": place(rng),
        "dropoff": place(rng),
        "packageDetail": {"id": f"p-{delivery_id}", "size": "Small", "weight": 10},
        "expedited": rng.random() < 0.2,
    }


async def drive(
    session: aiohttp.ClientSession, call: Call, concurrency: int, seconds: float
) -> dict[str, Any]:
    """``concurrency`` callers back to back for ``seconds``."""
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    deadline = time.perf_counter() + seconds
    counter = iter(range(10**9))

    async def caller() -> None:
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            status = await call(session, next(counter))
            latencies.append(time.perf_counter() - started)
            statuses[status] += 1

    started = time.perf_counter()
    await asyncio.gather(*(caller() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    latencies.sort()

    def pct(p: float) -> float:
        return round(latencies[min(len(latencies) - 1, int(len(latencies) * p))] * 1000, 1)

    return {
        "requests": len(latencies),
        "per_second": round(len(latencies) / elapsed, 1),
        "p50_ms": pct(0.50),
        "p95_ms": pct(0.95),
        "p99_ms": pct(0.99),
        "mean_ms": round(statistics.fmean(latencies) * 1000, 1),
        "statuses": dict(sorted(statuses.items())),
    }


async def run(args: argparse.Namespace) -> dict[str, Any]:
    rng = random.Random(7)
    results: dict[str, Any] = {
        "machine": f"{platform.machine()} {os.cpu_count()} CPUs, Python {platform.python_version()}"
    }
    with scheduler_stack(drones=args.drones) as service:
        url = service.url
        results["start (seed)"] = {"seconds": round(await service.start(), 2)}
        results["start (seed)"].update(service.startup_log(*LOGGED))
        assigned: list[str] = []
        bodies: dict[str, dict[str, Any]] = {}
        try:
            async with aiohttp.ClientSession(url) as session:

                async def assign(session: aiohttp.ClientSession, i: int) -> int:
                    delivery_id = str(uuid.uuid4())
                    body = delivery(delivery_id, rng)
                    async with session.put(f"/api/dronedeliveries/{delivery_id}", json=body) as r:
                        await r.read()
                        if r.status == 201:
                            assigned.append(delivery_id)
                            bodies[delivery_id] = body
                        return r.status

                async def replay(session: aiohttp.ClientSession, i: int) -> int:
                    delivery_id = assigned[i % len(assigned)]
                    path = f"/api/dronedeliveries/{delivery_id}"
                    async with session.put(path, json=bodies[delivery_id]) as r:
                        await r.read()
                        return r.status

                async def get(session: aiohttp.ClientSession, i: int) -> int:
                    delivery_id = assigned[i % len(assigned)]
                    async with session.get(f"/api/dronedeliveries/{delivery_id}") as r:
                        await r.read()
                        return r.status

                async def replan(session: aiohttp.ClientSession, i: int) -> int:
                    delivery_id = assigned[i % len(assigned)]
                    path = f"/api/dronedeliveries/{delivery_id}"
                    async with session.patch(path, json={"dropoff": place(rng)}) as r:
                        await r.read()
                        return r.status

                async def release(session: aiohttp.ClientSession, i: int) -> int:
                    delivery_id = assigned[-1 - i % len(assigned)]
                    async with session.delete(f"/api/dronedeliveries/{delivery_id}") as r:
                        await r.read()
                        return r.status

                for concurrency in args.concurrency:
                    key = f"assign c={concurrency}"
                    results[key] = await drive(session, assign, concurrency, args.seconds)
                concurrency = args.concurrency[0]
                results[f"replay c={concurrency}"] = await drive(
                    session, replay, concurrency, args.short
                )
                results[f"get c={concurrency}"] = await drive(session, get, concurrency, args.short)
                results[f"replan c={concurrency}"] = await drive(
                    session, replan, concurrency, args.short
                )
                results[f"release c={concurrency}"] = await drive(
                    session, release, concurrency, args.short
                )
        finally:
            service.stop()
        results["assigned"] = len(assigned)
        results["restart"] = {"seconds": round(await service.start(), 2)}
        results["restart"].update(service.startup_log(*LOGGED))
        service.stop()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--concurrency", type=int, nargs="+", default=[20, 50])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--short", type=float, default=3.0, help="seconds of the other runs")
    parser.add_argument("--drones", type=int, default=0, help="fleet size (default: settings)")
    args = parser.parse_args()
    print(json.dumps(asyncio.run(run(args)), indent=2))


if __name__ == "__main__":
    main()
