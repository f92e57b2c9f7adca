"""GET /api/deliveries/{id}/status throughput, in process, on a real redis-server.

    uv run python services/delivery/benchmarks/bench_status.py --seconds 5 --concurrency 16

Seeds ``--deliveries`` deliveries (half in flight, so the interpolation runs; a quarter waiting
for a drone, so ETAs are estimated; a quarter cancelled), then ``--concurrency`` workers ask for
the status of random deliveries for ``--seconds`` each way. Tokens are on, as deployed (a
development issuer in the temporary folder, the test kit's ``LocalIssuer``): the deliveries are
written with a service token holding ``Deliveries.Write``, the status is read with an
``Operator``'s token (verified once, then answered from the verified-token cache, as a busy
replica does):

- ``httpx``: through ``httpx.ASGITransport`` (what the tests do; the client's cost included);
- ``asgi``: straight into the ASGI app (the service's own cost: middleware, problem handlers,
  OpenTelemetry instrumentation without an exporter, routing, the Redis round trip, the status
  computation and the JSON answer);
- ``redis``: a bare ``HMGET`` of the same hash, the floor on this machine (one round trip).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import random
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from delivery.main import create_app
from delivery.settings import DeliverySettings
from dronecommon.auth.roles import DELIVERIES_WRITE
from dronecommon.domain import format_utc
from dronecommon.settings import RedisSettings
from dronetesting.apps import app_client
from dronetesting.servers import RedisServer
from dronetesting.tokens import LocalIssuer

Call = Callable[[str], Awaitable[None]]


def body(delivery_id: str, kind: int, now: dt.datetime) -> dict[str, Any]:
    document: dict[str, Any] = {
        "id": delivery_id,
        "owner": {"userId": f"owner-{kind}", "accountId": "bench"},
        "pickup": {"latitude": 47.6, "longitude": -122.33, "altitude": 0},
        "dropoff": {"latitude": 47.7, "longitude": -122.2, "altitude": 0},
        "confirmationRequired": "None",
        "droneId": f"drone-{kind}",
    }
    if kind < 2:  # in flight
        document["pickupETA"] = format_utc(now - dt.timedelta(minutes=10))
        document["deliveryETA"] = format_utc(now + dt.timedelta(minutes=20))
    return document


async def measure(call: Call, ids: list[str], seconds: float, concurrency: int) -> str:
    latencies: list[float] = []
    stop = time.perf_counter() + seconds

    async def worker(rng: random.Random) -> None:
        while time.perf_counter() < stop:
            started = time.perf_counter()
            await call(rng.choice(ids))
            latencies.append(time.perf_counter() - started)

    began = time.perf_counter()
    await asyncio.gather(*(worker(random.Random(n)) for n in range(concurrency)))
    elapsed = time.perf_counter() - began
    cuts = statistics.quantiles(latencies, n=100)
    return (
        f"{len(latencies) / elapsed:8.0f} req/s  p50 {cuts[49] * 1000:6.2f} ms  "
        f"p99 {cuts[98] * 1000:6.2f} ms  ({len(latencies)} in {elapsed:.1f} s)"
    )


def asgi_caller(app: Any, state: dict[str, Any], authorization: str) -> Call:
    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def call(delivery_id: str) -> None:
        path = f"/api/deliveries/{delivery_id}/status"
        statuses: list[int] = []

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                statuses.append(message["status"])

        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "GET",
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "query_string": b"",
            "root_path": "",
            "headers": [(b"host", b"bench"), (b"authorization", authorization.encode())],
            "client": ("127.0.0.1", 50000),
            "server": ("bench", 80),
            "state": dict(state),
        }
        await app(scope, receive, send)
        if statuses != [200]:
            raise RuntimeError(f"status {statuses}")

    return call


async def run(
    redis_url: str, folder: Path, seconds: float, concurrency: int, deliveries: int
) -> None:
    tokens = LocalIssuer.create(folder / "dev-issuer")
    settings = DeliverySettings(
        redis=RedisSettings(url=redis_url, max_connections=max(concurrency, 8)),
        auth=tokens.settings,
    )
    operator = tokens.customer("bench", "bench-operator", roles=("Operator",))["Authorization"]
    app = create_app(settings, configure_logs=False)
    now = dt.datetime.now(dt.UTC)
    ids = [f"bench-{n}" for n in range(deliveries)]
    async with app_client(app, headers=tokens.service(DELIVERIES_WRITE)) as client:
        for n, delivery_id in enumerate(ids):
            url = f"/api/deliveries/{delivery_id}"
            created = await client.put(url, json=body(delivery_id, n % 4, now))
            if created.status_code not in (201, 204):
                raise RuntimeError(created.text)
            if n % 4 == 3:
                deleted = await client.delete(url)
                if deleted.status_code not in (200, 204):
                    raise RuntimeError(deleted.text)

        async def via_httpx(delivery_id: str) -> None:
            response = await client.get(
                f"/api/deliveries/{delivery_id}/status", headers={"Authorization": operator}
            )
            if response.status_code != 200:
                raise RuntimeError(response.text)

        async with app.router.lifespan_context(app) as state:
            if state is None:
                raise RuntimeError("the app's lifespan yields no state")
            redis = state["deliveries"].repository.redis

            async def bare(delivery_id: str) -> None:
                await redis.hmget(f"delivery:{{{delivery_id}}}", ["state", "rev"])

            print(f"GET /status, {concurrency} concurrent, {deliveries} deliveries")
            for name, call in (
                ("httpx", via_httpx),
                ("asgi", asgi_caller(app, dict(state), operator)),
                ("redis", bare),
            ):
                await measure(call, ids, min(seconds, 0.5), concurrency)  # warm up
                print(f"  {name:6} {await measure(call, ids, seconds, concurrency)}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--deliveries", type=int, default=200)
    parser.add_argument("--redis-url", default=None, help="an existing Redis (default: start one)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-delivery-") as name:
        folder = Path(name)
        if args.redis_url:
            asyncio.run(
                run(args.redis_url, folder, args.seconds, args.concurrency, args.deliveries)
            )
            return
        with RedisServer(folder) as server:
            asyncio.run(run(server.url, folder, args.seconds, args.concurrency, args.deliveries))


if __name__ == "__main__":
    main()
