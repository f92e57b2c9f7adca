"""How many tracking streams one delivery replica serves, and how late their events arrive.

Starts a redis-server and one delivery replica (``python -m delivery``, its telemetry consumer on)
on free ports, creates ``--deliveries`` deliveries, opens ``--watchers`` public tracking streams
(spread evenly over the deliveries; each client opens ``--open-concurrency`` at a time) from
``--clients`` client processes, then publishes one fix
per delivery's drone per second for ``--seconds`` as the simulator does (spread over ten ticks a
second, a hundred fixes per stream entry). Each status event carries its fix's time
(``drone.at``): the push delay is when the client read the event minus that time, so it spans the
whole path — the stream entry, the consumer's batch, its write and announcement, the hub's read,
the watcher's queue and the socket. Reports the delay percentiles, events per second, the
replica's and Redis's CPU, and the streams' time to their first event. Tokens are on, as
deployed (a development issuer in the temporary folder): the deliveries are created with a
service token holding ``Deliveries.Write``; the public streams need none.

    uv run --all-packages python services/delivery/benchmarks/bench_watchers.py \\
        --deliveries 1000 --watchers 1000 --seconds 20
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import uvloop
from httpx_sse import aconnect_sse
from redis.asyncio import Redis

from dronecommon.auth.devissuer import DEFAULT_DEV_ISSUER, DevIssuer
from dronecommon.domain import format_utc
from dronecommon.fixes import Fix, Phase
from dronecommon.fixes.redis_streams import RedisFixPublisher
from dronetesting.servers import RedisServer, cpu_seconds, free_port

PICKUP = {"latitude": 47.60, "longitude": -122.33, "altitude": 0.0}
DROPOFF = {"latitude": 47.70, "longitude": -122.20, "altitude": 0.0}
AUDIENCE = "delivery-internal"
PUBLIC_AUDIENCE = "dronedelivery-api"


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else float("nan")


# --- client processes ----------------------------------------------------------------------


async def watch(args: argparse.Namespace) -> dict[str, Any]:
    """One client process: its streams, until told to stop (a line on stdin)."""
    delays: list[float] = []
    first: list[float] = []
    events = 0
    limits = httpx.Limits(max_connections=None, max_keepalive_connections=None)
    timeout = httpx.Timeout(30, read=None)

    opening = asyncio.Semaphore(args.open_concurrency)
    all_open = asyncio.Event()

    async def one(client: httpx.AsyncClient, delivery_id: str) -> None:
        nonlocal events
        path = f"/api/deliveries/public/{delivery_id}/tracking"
        await opening.acquire()
        started = time.monotonic()
        async with aconnect_sse(client, "GET", path) as source:
            assert source.response.status_code == 200, await source.response.aread()
            async for event in source.aiter_sse():
                if event.event != "status":
                    continue
                if started:
                    first.append(time.monotonic() - started)
                    started = 0.0
                    opening.release()
                    if len(first) == len(ids):
                        all_open.set()
                events += 1
                drone = json.loads(event.data).get("drone")
                if drone is not None:
                    at = dt.datetime.fromisoformat(drone["at"]).timestamp()
                    delays.append(time.time() - at)

    ids = args.ids.split(",")
    async with httpx.AsyncClient(base_url=args.url, limits=limits, timeout=timeout) as client:
        tasks = [asyncio.create_task(one(client, delivery_id)) for delivery_id in ids]
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader()
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
        await asyncio.wait_for(all_open.wait(), 120)  # every stream has had its first event
        print("ready", flush=True)
        await reader.readline()  # "measure": forget the start-up
        delays.clear()
        events = 0
        cpu = time.process_time()
        await reader.readline()  # "stop"
        cpu = time.process_time() - cpu
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    return {"delays": delays, "events": events, "first": first, "cpu": cpu}


# --- the driver ----------------------------------------------------------------------------


async def publish_fixes(
    redis: Redis, drones: list[tuple[str, str]], seconds: float, stop_at: float
) -> int:
    """One fix per drone per second, in ten ticks a second, until ``stop_at``."""
    publisher = RedisFixPublisher(redis, maxlen=1_000_000)
    ticks = 10
    seq = 0
    published = 0
    start = time.monotonic()
    while time.monotonic() < stop_at:
        seq += 1
        for tick in range(ticks):
            when = start + seq - 1 + tick / ticks
            await asyncio.sleep(max(0.0, when - time.monotonic()))
            at = dt.datetime.now(dt.UTC)
            share = min(1.0, seq / seconds)
            batch = [
                Fix(
                    drone_id=drone_id,
                    delivery_id=delivery_id,
                    at=at,
                    seq=seq,
                    latitude=PICKUP["latitude"] + 0.1 * share,
                    longitude=PICKUP["longitude"] + 0.13 * share,
                    altitude=120.0,
                    speed_mph=40.0,
                    heading_deg=45.0,
                    battery_pct=90.0,
                    phase=Phase.TO_DROPOFF,
                )
                for n, (drone_id, delivery_id) in enumerate(drones)
                if n % ticks == tick
            ]
            await publisher.publish(batch)
            published += len(batch)
    return published


async def drive(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as folder, RedisServer(Path(folder)) as server:
        port = free_port()
        issuer = DevIssuer.generate(DEFAULT_DEV_ISSUER)
        _, jwks_file = issuer.save(Path(folder) / "dev-issuer")
        env = {
            **os.environ,
            "DELIVERY_PORT": str(port),
            "DELIVERY_REDIS__URL": server.url,
            "DELIVERY_LOG_LEVEL": "WARNING",
            "DELIVERY_SSE__MAX_WATCHERS": str(args.watchers + 100),
            "DELIVERY_AUTH__ENABLED": "true",
            "DELIVERY_AUTH__ISSUER": issuer.issuer,
            "DELIVERY_AUTH__AUDIENCE": AUDIENCE,
            "DELIVERY_AUTH__PUBLIC_AUDIENCE": PUBLIC_AUDIENCE,
            "DELIVERY_AUTH__JWKS_FILE": str(jwks_file),
        }
        writer = issuer.mint(
            audience=AUDIENCE, subject="bench", azp="bench", oid="bench", roles=["Deliveries.Write"]
        )
        log = args.log or Path(folder) / "delivery.log"
        with log.open("wb") as out:
            replica = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "delivery", env=env, stdout=out, stderr=out
            )
        url = f"http://127.0.0.1:{port}"
        clients: list[asyncio.subprocess.Process] = []
        try:
            headers = {"Authorization": f"Bearer {writer}"}
            async with httpx.AsyncClient(base_url=url, timeout=10, headers=headers) as http:
                while True:
                    try:
                        if (await http.get("/readyz")).status_code == 200:
                            break
                    except httpx.TransportError:
                        pass
                    assert replica.returncode is None, log.read_text()
                    await asyncio.sleep(0.1)
                now = dt.datetime.now(dt.UTC)
                drones = []
                for n in range(args.deliveries):
                    delivery_id, drone_id = f"w-{n:05d}", f"wd-{n:05d}"
                    body = {
                        "owner": {"userId": "bench", "accountId": "bench"},
                        "pickup": PICKUP,
                        "dropoff": DROPOFF,
                        "confirmationRequired": "None",
                        "droneId": drone_id,
                        "pickupETA": format_utc(now + dt.timedelta(minutes=10)),
                        "deliveryETA": format_utc(now + dt.timedelta(minutes=30)),
                    }
                    created = await http.put(f"/api/deliveries/{delivery_id}", json=body)
                    assert created.status_code == 201, created.text
                    drones.append((drone_id, delivery_id))

            watched = [drones[n % len(drones)][1] for n in range(args.watchers)]
            share = -(-len(watched) // args.clients)
            for c in range(args.clients):
                mine = watched[c * share : (c + 1) * share]
                if not mine:
                    continue
                clients.append(
                    await asyncio.create_subprocess_exec(
                        sys.executable,
                        __file__,
                        "--role",
                        "client",
                        "--url",
                        url,
                        "--ids",
                        ",".join(mine),
                        "--open-concurrency",
                        str(args.open_concurrency),
                        "--json",
                        str(Path(folder) / f"client-{c}.json"),
                        stdin=asyncio.subprocess.PIPE,
                        stdout=asyncio.subprocess.PIPE,
                    )
                )
            for client in clients:
                assert client.stdout is not None
                assert (await client.stdout.readline()).strip() == b"ready"
            print(f"replica pid {replica.pid}: streams open", file=sys.stderr, flush=True)

            redis = Redis.from_url(server.url)
            warmup = 3.0
            stop_at = time.monotonic() + warmup + args.seconds
            publishing = asyncio.create_task(
                publish_fixes(redis, drones, warmup + args.seconds, stop_at)
            )
            await asyncio.sleep(warmup)
            for client in clients:
                assert client.stdin is not None
                client.stdin.write(b"measure\n")
            replica_cpu, redis_cpu = cpu_seconds(replica.pid), server.cpu_seconds()
            started = time.monotonic()
            published = await publishing
            measured = time.monotonic() - started
            replica_cpu = cpu_seconds(replica.pid) - replica_cpu
            redis_cpu = server.cpu_seconds() - redis_cpu
            await asyncio.sleep(1.5)  # the last fixes' events
            results = []
            for c, client in enumerate(clients):
                assert client.stdin is not None
                client.stdin.write(b"stop\n")
                await client.communicate()
                results.append(json.loads((Path(folder) / f"client-{c}.json").read_text()))
            await redis.aclose()
        finally:
            for client in clients:
                if client.returncode is None:
                    client.kill()
            replica.terminate()
            await replica.wait()
        delays = [d for r in results for d in r["delays"]]
        first = [f for r in results for f in r["first"]]
        events = sum(r["events"] for r in results)
        return {
            "deliveries": args.deliveries,
            "watchers": args.watchers,
            "seconds": round(measured, 1),
            "fixes_per_second": round(published / (measured + warmup)),
            "events_per_second": round(events / measured),
            "push_delay_ms": {
                "p50": round(statistics.median(delays) * 1000, 1) if delays else None,
                "p90": round(_percentile(delays, 0.90) * 1000, 1),
                "p99": round(_percentile(delays, 0.99) * 1000, 1),
                "max": round(max(delays) * 1000, 1) if delays else None,
            },
            "first_event_ms_p99": round(_percentile(first, 0.99) * 1000, 1),
            "replica_cpu_per_second": round(replica_cpu / measured, 3),
            "redis_cpu_per_second": round(redis_cpu / measured, 3),
            "client_cpu_per_second": round(sum(r["cpu"] for r in results) / measured, 3),
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--role", choices=["driver", "client"], default="driver")
    parser.add_argument("--deliveries", type=int, default=1000)
    parser.add_argument("--watchers", type=int, default=1000)
    parser.add_argument("--clients", type=int, default=2, help="client processes")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument(
        "--open-concurrency", type=int, default=50, help="streams a client opens at once"
    )
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--ids", help=argparse.SUPPRESS)
    parser.add_argument("--json", type=Path, help="also write the result here")
    parser.add_argument("--log", type=Path, help="the replica's output (default: discarded)")
    args = parser.parse_args()
    if args.role == "client":
        args.json.write_text(json.dumps(uvloop.run(watch(args))))
        return
    result = uvloop.run(drive(args))
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
