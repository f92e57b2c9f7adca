"""Throughput and latency of the package service against a real FerretDB.

    uv run python services/package/benchmarks/bench_package.py --concurrency 20 --seconds 5

Starts FerretDB (SQLite) and ``python -m package`` (one uvicorn worker, uvloop + httptools, JSON
access logs at INFO as deployed) as child processes on free loopback ports, then drives each
scenario with ``--concurrency`` aiohttp callers sending requests back to back for ``--seconds``
after a one-second warm-up:

- ``healthz``: ``GET /healthz``, no I/O: the HTTP stack's own ceiling on this machine;
- ``put-create``: ``PUT /api/packages/{new id}`` (201);
- ``put-update``: ``PUT /api/packages/{existing id}`` (204);
- ``get``: ``GET /api/packages/{existing id}`` (200);
- ``patch``: ``PATCH /api/packages/{existing id}`` (204);
- ``summary``: ``GET /api/packages/summary/{owner}`` over ``--summary-packages`` packages of that
  owner in the month (200), with ``--summary-concurrency`` callers (FerretDB scans the whole
  collection for it, see the README).

Then it times the summary query itself in the database (the aggregation the service runs, against
a projected ``find`` summed in Python) for several owner sizes. Every client, server and database
shares this machine's CPUs: the figures are for comparing changes, not capacity planning.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import itertools
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
from pymongo import AsyncMongoClient

from dronetesting.apps import wait_ready
from dronetesting.servers import FerretDBServer, free_port

DATABASE = "bench"
OWNER = "bench-owner"
MONTH = dt.datetime(2024, 5, 1, tzinfo=dt.UTC)
BODY = {"size": "Small", "weight": 10, "tag": "bench", "ownerId": "someone"}

Call = Callable[[aiohttp.ClientSession, int], Awaitable[int]]


async def drive(
    session: aiohttp.ClientSession, call: Call, concurrency: int, seconds: float
) -> dict[str, Any]:
    """``concurrency`` callers back to back for ``seconds`` (after a 1 s warm-up)."""
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    counter = itertools.count()
    recording = False
    stop_at = 0.0

    async def caller() -> None:
        while time.perf_counter() < stop_at:
            started = time.perf_counter()
            status = await call(session, next(counter))
            if recording:
                latencies.append(time.perf_counter() - started)
                statuses[status] = statuses.get(status, 0) + 1

    stop_at = time.perf_counter() + 1.0
    await asyncio.gather(*(caller() for _ in range(concurrency)))
    recording = True
    started = time.perf_counter()
    stop_at = started + seconds
    await asyncio.gather(*(caller() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    latencies.sort()

    def pct(p: float) -> float:
        return round(latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000, 2)

    return {
        "requests": len(latencies),
        "rps": round(len(latencies) / elapsed, 1),
        "p50_ms": pct(0.50),
        "p90_ms": pct(0.90),
        "p99_ms": pct(0.99),
        "max_ms": round(latencies[-1] * 1000, 2),
        "mean_ms": round(statistics.fmean(latencies) * 1000, 2),
        "statuses": statuses,
    }


def scenarios(base: str, existing: list[str]) -> dict[str, Call]:
    run = uuid.uuid4().hex[:8]

    async def put_create(session: aiohttp.ClientSession, n: int) -> int:
        async with session.put(f"{base}/api/packages/c{run}-{n}", json=BODY) as response:
            await response.read()
            return response.status

    async def put_update(session: aiohttp.ClientSession, n: int) -> int:
        package_id = random.choice(existing)
        async with session.put(f"{base}/api/packages/{package_id}", json=BODY) as response:
            await response.read()
            return response.status

    async def get(session: aiohttp.ClientSession, n: int) -> int:
        async with session.get(f"{base}/api/packages/{random.choice(existing)}") as response:
            await response.read()
            return response.status

    async def patch(session: aiohttp.ClientSession, n: int) -> int:
        url = f"{base}/api/packages/{random.choice(existing)}"
        async with session.patch(url, json={"weight": 1 + n % 50}) as response:
            await response.read()
            return response.status

    async def healthz(session: aiohttp.ClientSession, n: int) -> int:
        async with session.get(f"{base}/healthz") as response:
            await response.read()
            return response.status

    async def summary(session: aiohttp.ClientSession, n: int) -> int:
        url = f"{base}/api/packages/summary/{OWNER}?year={MONTH.year}&month={MONTH.month}"
        async with session.get(url) as response:
            await response.read()
            return response.status

    return {
        "healthz": healthz,
        "put-create": put_create,
        "put-update": put_update,
        "get": get,
        "patch": patch,
        "summary": summary,
    }


def owner_documents(owner: str, count: int) -> list[dict[str, Any]]:
    return [
        {
            "_id": f"{owner}-{i}",
            "size": "Small",
            "weight": 1.0 + i % 7,
            "tag": None,
            "ownerId": owner,
            "createdAt": MONTH + dt.timedelta(minutes=i),
            "updatedAt": MONTH + dt.timedelta(minutes=i),
        }
        for i in range(count)
    ]


async def time_summary_queries(url: str, sizes: list[int], repeats: int) -> list[dict[str, Any]]:
    """The service's aggregation against a projected find summed in Python, per owner size."""
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(url)
    collection = client[DATABASE]["packages"]
    start, end = MONTH, dt.datetime(2024, 6, 1, tzinfo=dt.UTC)
    results = []
    try:
        for size in sizes:
            owner = f"query-owner-{size}"
            await collection.insert_many(owner_documents(owner, size))
            match = {"ownerId": owner, "createdAt": {"$gte": start, "$lt": end}}

            async def aggregate(match: dict[str, Any] = match) -> float:
                pipeline = [
                    {"$match": match},
                    {"$group": {"_id": None, "totalWeight": {"$sum": "$weight"}}},
                ]
                rows = await (await collection.aggregate(pipeline)).to_list()
                return float(rows[0]["totalWeight"]) if rows else 0.0

            async def projected(match: dict[str, Any] = match) -> float:
                cursor = collection.find(match, projection={"weight": 1, "_id": 0})
                return sum([float(doc["weight"]) async for doc in cursor])

            row: dict[str, Any] = {"packages": size}
            for name, query in (("aggregate", aggregate), ("find+sum", projected)):
                timings = []
                for _ in range(repeats):
                    started = time.perf_counter()
                    total = await query()
                    timings.append((time.perf_counter() - started) * 1000)
                row[f"{name}_ms"] = round(statistics.median(timings), 2)
                row["total"] = total
            results.append(row)
    finally:
        await client.close()
    return results


async def main(args: argparse.Namespace) -> dict[str, Any]:
    report: dict[str, Any] = {
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "concurrency": args.concurrency,
        "seconds": args.seconds,
        "http": {},
    }
    with tempfile.TemporaryDirectory() as folder, FerretDBServer(Path(folder) / "ferretdb") as db:
        mongo: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(db.url)
        collection = mongo[DATABASE]["packages"]
        await collection.insert_many(owner_documents(OWNER, args.summary_packages))
        existing = [f"{OWNER}-{i}" for i in range(args.summary_packages)]
        await mongo.close()

        port = free_port()
        env = {
            **os.environ,
            "PACKAGE_HOST": "127.0.0.1",
            "PACKAGE_PORT": str(port),
            "PACKAGE_MONGO__URL": db.url,
            "PACKAGE_MONGO__DATABASE": DATABASE,
            "PACKAGE_LOG_LEVEL": args.log_level,
            # The store and the service, without token checks (make bench measures the whole
            # system with them).
            "PACKAGE_AUTH__ENABLED": "false",
        }
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "package",
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            await wait_ready(base, within=20, process=process)
            connector = aiohttp.TCPConnector(limit=args.concurrency)
            async with aiohttp.ClientSession(connector=connector) as session:
                for name, call in scenarios(base, existing).items():
                    if args.only and name not in args.only:
                        continue
                    concurrency = args.concurrency
                    if name == "summary":
                        concurrency = args.summary_concurrency
                    result = await drive(session, call, concurrency, args.seconds)
                    result["concurrency"] = concurrency
                    report["http"][name] = result
                    print(f"{name:11} {json.dumps(result)}", flush=True)
        finally:
            process.terminate()
            await asyncio.wait_for(process.wait(), timeout=15)
        report["summary_query"] = await time_summary_queries(
            db.url, args.query_sizes, args.query_repeats
        )
        for row in report["summary_query"]:
            print(f"summary query {json.dumps(row)}", flush=True)
    return report


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--summary-packages", type=int, default=1000)
    parser.add_argument("--summary-concurrency", type=int, default=4)
    parser.add_argument("--query-sizes", type=int, nargs="+", default=[100, 1000, 10000])
    parser.add_argument("--query-repeats", type=int, default=5)
    parser.add_argument("--log-level", default="INFO")
    parser.add_argument("--only", nargs="*", help="scenarios to run (default: all)")
    parser.add_argument("--json", type=Path, help="also write the report here")
    arguments = parser.parse_args()
    result = asyncio.run(main(arguments))
    if arguments.json:
        arguments.json.write_text(json.dumps(result, indent=2) + "\n")
