"""Start-up time of the drone scheduler against the number of deliveries it has ever made.

    uv run python services/dronescheduler/benchmarks/bench_startup.py --deliveries 10000 1000000

For each history size N, on a fresh FerretDB (SQLite): start ``python -m dronescheduler`` once to
seed the fleet (the default 40,000 drones unless ``--drones``), stop it, write N past deliveries
straight into the database in the service's own layout (``records.py``), then start the service
``--restarts`` times and measure process start to ``/readyz`` 200, with the lease-log read the
service logs (``loadMs``, ``leases``).

The history is what the database holds after N deliveries, each assigned and released, with
every tenth re-planned, all older than the lease retention:

- ``assignments``, ``releases``: N documents each; ``plans``: N / 10;
- ``leases`` (``--layout compact``, the service's): each drone's latest generation only, the
  superseded ones having been deleted; ``--layout log`` keeps every generation (2 N + N / 10),
  as the log was before it was compacted, for comparison.

Every client, server and database shares this machine's CPUs: the figures are for comparing
sizes and layouts, not for capacity planning.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import platform
import random
import sys
import time
import uuid
from collections.abc import Iterator
from typing import Any

from pymongo import AsyncMongoClient
from scheduler_stack import DATABASE, scheduler_stack

from dronecommon.domain import Location, PackageSize
from dronescheduler.fleet import Fleet
from dronescheduler.records import AssignmentRecord, Lease, LeaseKind
from dronescheduler.settings import FleetSettings

Document = dict[str, Any]
BATCH = 5000
DAY = dt.timedelta(days=1)
# What the service logs when its fleet is ready.
LOGGED = ("leases", "loadMs", "seedMs", "indexesMs")


def history(
    fleet: Fleet, deliveries: int, layout: str, rng: random.Random
) -> Iterator[tuple[str, Document]]:
    """(collection, document) for ``deliveries`` past deliveries, in the service's layout."""
    drones = fleet.drones
    generations = [0] * len(drones)
    start = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    spacing = (dt.datetime(2025, 1, 1, tzinfo=dt.UTC) - start) / max(1, deliveries)
    for n in range(deliveries):
        index = n % len(drones)
        drone = drones[index]
        delivery_id = str(uuid.uuid4())
        assigned = start + spacing * n
        busy_until = assigned + dt.timedelta(minutes=rng.uniform(10, 45))
        pickup, dropoff = (
            Location(latitude=rng.uniform(47.5, 47.75), longitude=rng.uniform(-122.45, -122.2))
            for _ in range(2)
        )
        record = AssignmentRecord(
            delivery_id=delivery_id,
            owner_id=f"owner-{n % 1000}",
            drone_id=drone.id,
            base=drone.base.name,
            drone_class=drone.drone_class.name,
            lease_gen=generations[index] + 1,
            pickup=pickup,
            dropoff=dropoff,
            package_id=f"p-{n}",
            package_size=PackageSize.SMALL,
            package_weight=10.0,
            expedited=False,
            speed_mph=drone.drone_class.speed_mph,
            miles=rng.uniform(2, 20),
            assigned_at=assigned,
            pickup_eta=assigned + dt.timedelta(minutes=5),
            delivery_eta=assigned + dt.timedelta(minutes=15),
            busy_until=busy_until,
        )
        yield "assignments", record.document()
        kinds = [(LeaseKind.ASSIGN, busy_until, assigned)]
        if n % 10 == 0:
            replanned = record.replace(plan_no=1, lease_gen=record.lease_gen + 1)
            yield "plans", replanned.plan_document(assigned + dt.timedelta(minutes=1))
            kinds.append((LeaseKind.REPLAN, busy_until, assigned + dt.timedelta(minutes=1)))
        released_at = busy_until - dt.timedelta(minutes=1)
        yield "releases", {"_id": delivery_id, "releasedAt": released_at, "at": released_at}
        kinds.append((LeaseKind.RELEASE, released_at, released_at))
        for kind, until, at in kinds:
            generations[index] += 1
            lease = Lease(drone.id, generations[index], delivery_id, kind, until, at)
            if layout == "log" or (kind is LeaseKind.RELEASE and n + len(drones) >= deliveries):
                yield "leases", lease.document()  # the compact log keeps each drone's latest


async def write_history(url: str, database: str, fleet: Fleet, args: Any, n: int) -> float:
    client: AsyncMongoClient[Document] = AsyncMongoClient(url, tz_aware=True)
    started = time.perf_counter()
    batches: dict[str, list[Document]] = {}
    try:
        db = client[database]
        for collection, document in history(fleet, n, args.layout, random.Random(n)):
            batch = batches.setdefault(collection, [])
            batch.append(document)
            if len(batch) >= BATCH:
                await db[collection].insert_many(batch, ordered=False)
                batch.clear()
        for collection, batch in batches.items():
            if batch:
                await db[collection].insert_many(batch, ordered=False)
    finally:
        await client.close()
    return time.perf_counter() - started


async def measure(args: argparse.Namespace, deliveries: int) -> dict[str, Any]:
    result: dict[str, Any] = {"deliveries": deliveries, "layout": args.layout}
    # One start-up attempt may take as long as the history needs (seeding, indexes, lease log).
    patient = {"DRONESCHEDULER_BOOTSTRAP_TIMEOUT": "3600"}
    with scheduler_stack(drones=args.drones, env=patient, tmp=args.tmp) as service:
        fleet = Fleet(FleetSettings(count=args.drones) if args.drones else FleetSettings())
        result["first start (seeding)"] = round(await service.start(), 2)
        service.stop()
        result["history written (s)"] = round(
            await write_history(service.mongo_url, DATABASE, fleet, args, deliveries), 1
        )
        restarts = []
        for _ in range(args.restarts):
            seconds = await service.start()
            restarts.append({"ready_s": round(seconds, 2), **service.startup_log(*LOGGED)})
            service.stop()
        result["restarts"] = restarts
        result["database MiB"] = round(
            sum(f.stat().st_size for f in (service.folder / "db").rglob("*") if f.is_file()) / 2**20
        )
    return result


async def run(args: argparse.Namespace) -> dict[str, Any]:
    results: dict[str, Any] = {
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}",
        "load average at start": os.getloadavg(),
        "runs": [],
    }
    for deliveries in args.deliveries:
        run_result = await measure(args, deliveries)
        print(json.dumps(run_result), file=sys.stderr, flush=True)
        results["runs"].append(run_result)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--deliveries", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--drones", type=int, default=0, help="fleet size (default: settings)")
    parser.add_argument("--restarts", type=int, default=3)
    parser.add_argument("--layout", choices=["compact", "log"], default="compact")
    parser.add_argument("--tmp", default=None, help="where the databases go (default: TMPDIR)")
    print(json.dumps(asyncio.run(run(parser.parse_args())), indent=2))


if __name__ == "__main__":
    main()
