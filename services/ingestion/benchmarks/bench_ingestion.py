"""POST /api/deliveryrequests latency and throughput, over a real socket.

Starts a private redis-server and ``python -m ingestion`` (uvicorn, uvloop, httptools: as in
production) on free ports, with customer tokens from a development issuer (per-account limits
and admission control set out of the way: nothing drains the queue here, so admission control
would answer 503 once the backlog passes ``min_backlog``), then keeps ``--concurrency`` clients
posting the contract's sample for ``--seconds`` seconds, without and with a fresh
``Idempotency-Key`` per request, and prints p50/p90/p99 latency as the clients saw it and as the
server measured it (``duration_ms`` of its access-log lines: the time inside the app, without
the client's own CPU), throughput, the ingestion process's CPU time per request (user + system,
from ``/proc``: steadier than latency on shared cores, where the client takes its share) and
the number of messages the queue holds afterwards. Any answer but 202 fails the run (exit
status 1): its figures would be an error path's.

``--refused`` measures the other answer of an overloaded front door instead: admission control
on, with nothing draining the queue, so once the warm-up has filled it every request is refused
with 503 ``overloaded`` (any other answer fails the run); the figure that matters is the
server's CPU per refused request, what each one takes from the pipeline past the knee.

    uv run python services/ingestion/benchmarks/bench_ingestion.py --concurrency 16 --seconds 10
    uv run python services/ingestion/benchmarks/bench_ingestion.py --refused
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path

import httpx
from redis.asyncio import Redis

from dronecommon.auth.devissuer import PUBLIC_AUDIENCE, DevIssuer
from dronecommon.messaging.redis_streams import stream_key
from dronetesting.apps import wait_ready
from dronetesting.samples import SAMPLE_REQUEST
from dronetesting.servers import RedisServer, cpu_seconds, free_port


async def load(
    client: httpx.AsyncClient, *, concurrency: int, seconds: float, keyed: bool
) -> tuple[list[float], dict[int, int], float]:
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    stop_at = time.perf_counter() + seconds

    async def worker() -> None:
        while time.perf_counter() < stop_at:
            headers = {"Idempotency-Key": str(uuid.uuid4())} if keyed else {}
            started = time.perf_counter()
            response = await client.post(
                "/api/deliveryrequests", json=SAMPLE_REQUEST, headers=headers
            )
            latencies.append(time.perf_counter() - started)
            statuses[response.status_code] = statuses.get(response.status_code, 0) + 1

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return latencies, statuses, time.perf_counter() - started


def percentiles(ms: list[float]) -> str:
    cuts = statistics.quantiles(ms, n=100)
    return (
        f"p50={cuts[49]:6.2f} ms  p90={cuts[89]:6.2f} ms  p99={cuts[98]:6.2f} ms  "
        f"max={max(ms):6.2f} ms"
    )


def report(
    name: str, latencies: list[float], statuses: dict[int, int], elapsed: float, cpu: float
) -> None:
    ms = [latency * 1000 for latency in latencies]
    print(
        f"{name:<22} client  n={len(ms):>6}  {len(ms) / elapsed:>6.0f} req/s  "
        f"{percentiles(ms)}  statuses={statuses}  "
        f"server CPU {cpu / len(ms) * 1e6:.0f} us/request"
    )


def server_durations(log: Path) -> list[float]:
    """``duration_ms`` of every POST in the service's access log, in completion order."""
    durations = []
    for line in log.read_text().splitlines():
        if not line.startswith("{"):
            continue
        entry = json.loads(line)
        if entry.get("http_method") == "POST" and "duration_ms" in entry:
            durations.append(float(entry["duration_ms"]))
    return durations


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument(
        "--refused", action="store_true", help="every request refused by admission control"
    )
    args = parser.parse_args()
    expected = 503 if args.refused else 202
    phases = (
        [(False, "refused (overloaded)")]
        if args.refused
        else [
            (False, "no Idempotency-Key"),
            (True, "with Idempotency-Key"),
        ]
    )

    with tempfile.TemporaryDirectory() as tmp, RedisServer(Path(tmp) / "redis") as redis_server:
        port = free_port()
        issuer = DevIssuer.generate()
        _, jwks_file = issuer.save(Path(tmp) / "dev-issuer")
        env = {
            **os.environ,
            "INGESTION_PORT": str(port),
            "INGESTION_REDIS__URL": redis_server.url,
            "INGESTION_LOG_LEVEL": "INFO",
            "INGESTION_LOG_JSON": "true",
            "INGESTION_AUTH__ENABLED": "true",
            "INGESTION_AUTH__ISSUER": issuer.issuer,
            "INGESTION_AUTH__PUBLIC_AUDIENCE": PUBLIC_AUDIENCE,
            "INGESTION_AUTH__JWKS_FILE": str(jwks_file),
            "INGESTION_LIMITS__REQUESTS_PER_MINUTE": "100000000",
            "INGESTION_LIMITS__BURST": "100000",
            "INGESTION_LIMITS__MAX_IN_PROGRESS": "100000000",
            "INGESTION_ADMISSION__ENABLED": "false",
        }
        if args.refused:  # nothing drains the queue: past a handful of messages, all refused
            env["INGESTION_ADMISSION__ENABLED"] = "true"
            env["INGESTION_ADMISSION__MIN_BACKLOG"] = "10"
            env["INGESTION_ADMISSION__INTERVAL"] = "0.1"
        headers = {"Authorization": f"Bearer {issuer.mint_customer(lifetime=24 * 3600)}"}
        log_path = Path(tmp) / "ingestion.log"
        with log_path.open("wb") as log:
            process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "ingestion", env=env, stdout=log, stderr=log
            )
        limits = httpx.Limits(max_connections=args.concurrency, max_keepalive_connections=None)
        try:
            async with httpx.AsyncClient(
                base_url=f"http://127.0.0.1:{port}", limits=limits, timeout=10, headers=headers
            ) as client:
                await wait_ready(client, within=60, process=process)
                warm, _, _ = await load(
                    client, concurrency=args.concurrency, seconds=args.warmup, keyed=False
                )
                print(f"POST /api/deliveryrequests, {args.concurrency} concurrent clients")
                total = 0
                counts = []
                unexpected: Counter[int] = Counter()
                for keyed, name in phases:
                    cpu = cpu_seconds(process.pid)
                    latencies, statuses, elapsed = await load(
                        client, concurrency=args.concurrency, seconds=args.seconds, keyed=keyed
                    )
                    cpu = cpu_seconds(process.pid) - cpu
                    total += statuses.get(202, 0)
                    unexpected.update({k: v for k, v in statuses.items() if k != expected})
                    report(name, latencies, statuses, elapsed, cpu)
                    counts.append((name, len(latencies)))
            await asyncio.sleep(0.5)  # the last log lines
            durations = server_durations(log_path)[len(warm) :]
            for name, count in counts:
                print(f"{name:<22} server  n={count:>6}  {percentiles(durations[:count])}")
                durations = durations[count:]
            redis = Redis.from_url(redis_server.url)
            try:
                queued = int(await redis.xlen(stream_key("deliveryrequests")))
            finally:
                await redis.aclose()
            warmup = queued - total
            print(f"queue holds {queued} messages: {total} measured 202s + {warmup} warm-up")
        finally:
            process.terminate()
            await process.wait()
    if unexpected:  # the figures would be those of another path than the one measured
        print(f"FAIL: answers other than {expected}: {dict(unexpected)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
