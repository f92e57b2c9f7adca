"""The load generators and small servers, each run as a child process of ``scripts/bench.py``.

``open_loop`` POSTs delivery requests at a constant rate whatever the answers (latency measured
from the *intended* send time); ``closed_loop`` has a fixed number of callers GET back to back;
``bare`` is a bare uvicorn JSON endpoint (the baseline of the status reads); ``sink`` an endpoint
that discards the telemetry it gets (OTLP/HTTP, and Application Insights' ``/v2.1/track``). All
run on uvloop with aiohttp.

The requests carry no ``traceparent``, like a customer's client: whether a trace is recorded is
the services' own sampling decision (parent-based: ingestion decides, the rest follow).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from dronetesting.servers import free_port

from .common import ENTRY, percentile, r

SMALL_JSON = b'{"stage":"HeadedToPickup","pickupETA":"2026-01-01T00:00:00.000Z"}'


#: One request in this many asks to be told by e-mail (the notifier sends to Mailpit).
NOTIFY_EVERY = 10


def delivery_body(i: int) -> bytes:
    # Free-text places resolve deterministically inside the service area: varied pickups.
    body: dict[str, Any] = {
        "ownerId": owner_of(i),
        "pickupLocation": f"bench pickup {i}",
        "dropOffLocation": f"bench drop-off {i}",
        "pickupTime": "2019-05-08T20:00:00.000Z",
        "deadline": "",
        "expedited": i % 4 == 0,
        "confirmationRequired": "None",
        "packageInfo": {
            "packageId": f"bench-{uuid.uuid4().hex}",
            "size": "Small",
            "weight": 10,
        },
    }
    if i % NOTIFY_EVERY == 0:
        body["notify"] = {"emailAddress": f"{owner_of(i)}@example.com"}
    return json.dumps(body, separators=(",", ":")).encode()


OWNERS = 50


def problem_type(body: bytes) -> str | None:
    with contextlib.suppress(ValueError, AttributeError):
        return str(json.loads(body).get("type"))
    return None


def owner_of(i: int) -> str:
    return f"bench-owner-{i % OWNERS}"


async def open_loop(
    url: str, rate: float, seconds: float, out: Path, tokens: list[str] | None = None
) -> None:
    """POST at ``rate``/s for ``seconds`` whatever the answers; write every outcome as JSON.

    Request ``i`` is sent by its owner, ``owner_of(i)``, with ``tokens[i % OWNERS]``."""
    import aiohttp

    count = int(rate * seconds)
    bodies = [delivery_body(i) for i in range(count)]
    results: list[Any] = [None] * count
    connector = aiohttp.TCPConnector(limit=2000, ttl_dns_cache=None)
    timeout = aiohttp.ClientTimeout(total=30)
    loop = asyncio.get_running_loop()
    lags: list[float] = []

    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

        async def one(i: int, intended: float) -> None:
            headers = {"Content-Type": "application/json", "baggage": "synthetic_request=true"}
            if tokens:
                headers["Authorization"] = "Bearer " + tokens[i % OWNERS]
            status, delivery_id = -1, None
            try:
                async with session.post(url, data=bodies[i], headers=headers) as response:
                    answer = await response.read()
                    status = response.status
                    if status == 202:
                        location = response.headers.get("Location", "")
                        delivery_id = location.rsplit("/", 1)[-1] or None
                    else:  # the problem's type says why
                        delivery_id = problem_type(answer)
            except Exception as exc:
                status = -1
                delivery_id = type(exc).__name__
            done = loop.time()
            # [latency from the intended send (s), wall time of the answer, status,
            #  the deliveryId of a 202, else the problem type or the exception's name]
            results[i] = [done - intended, time.time(), status, delivery_id]

        # Warm the connection pool a little (not measured).
        with contextlib.suppress(Exception):
            async with session.get(url.rsplit("/api/", 1)[0] + "/healthz") as response:
                await response.read()
        start = loop.time() + 0.05
        wall_start = time.time() + 0.05
        tasks = []
        i = 0
        while i < count:
            now = loop.time()
            while i < count and start + i / rate <= now:
                intended = start + i / rate
                lags.append(now - intended)
                tasks.append(asyncio.create_task(one(i, intended)))
                i += 1
            if i < count:
                await asyncio.sleep(max(0.0, start + i / rate - loop.time()))
        send_end = time.time()
        await asyncio.gather(*tasks)
    lags.sort()
    out.write_text(  # noqa: ASYNC240 - once, after the measurement
        json.dumps(
            {
                "wall_start": wall_start,
                "send_end": send_end,
                "rate": rate,
                "seconds": seconds,
                "send_lag_p99_ms": percentile(lags, 0.99) * 1e3,
                "send_lag_max_ms": (lags[-1] if lags else 0.0) * 1e3,
                "cpu_seconds": time.process_time(),
                "results": results,
            }
        )
    )


async def closed_loop(
    urls: list[str],
    concurrency: int,
    seconds: float,
    warmup: float,
    out: Path,
    token: str | None = None,
) -> None:
    """``concurrency`` callers GET the urls round robin back to back; requests/s and latency."""
    import aiohttp

    connector = aiohttp.TCPConnector(limit=concurrency, ttl_dns_cache=None)
    latencies: list[float] = []
    counters = {"errors": 0, "non_200": 0}
    clock = time.perf_counter
    async with aiohttp.ClientSession(connector=connector) as session:

        async def caller(offset: int, until: float, record: bool) -> None:
            n = offset
            while clock() < until:
                url = urls[n % len(urls)]
                n += concurrency
                headers = {"baggage": "synthetic_request=true"}
                if token:
                    headers["Authorization"] = "Bearer " + token
                started = clock()
                try:
                    async with session.get(url, headers=headers) as response:
                        await response.read()
                        if response.status != 200:
                            counters["non_200"] += 1
                except Exception:
                    counters["errors"] += 1
                    continue
                if record:
                    latencies.append(clock() - started)

        await asyncio.gather(*(caller(k, clock() + warmup, False) for k in range(concurrency)))
        counters["errors"] = counters["non_200"] = 0
        began, cpu = clock(), time.process_time()
        await asyncio.gather(*(caller(k, began + seconds, True) for k in range(concurrency)))
        elapsed, cpu = clock() - began, time.process_time() - cpu
    latencies.sort()
    out.write_text(  # noqa: ASYNC240 - once, after the measurement
        json.dumps(
            {
                "requests": len(latencies),
                "requests_per_second": r(len(latencies) / elapsed),
                "p50_ms": r(percentile(latencies, 0.5) * 1e3, 2),
                "p99_ms": r(percentile(latencies, 0.99) * 1e3, 2),
                "errors": counters["errors"],
                "non_200": counters["non_200"],
                "generator_cpu_us_per_request": r(cpu / max(1, len(latencies)) * 1e6),
                "concurrency": concurrency,
                "seconds": seconds,
            }
        )
    )


TRACK_ACCEPTED = b'{"itemsReceived": 0, "itemsAccepted": 0, "errors": []}'


def serve_sink(port: int) -> None:
    """A telemetry sink: 200 to every POST, read and discarded. OTLP/HTTP (traces, metrics)
    gets an empty protobuf answer; Application Insights' ``.../track`` a success with no
    errors."""
    import uvloop
    from aiohttp import web

    async def discard(request: web.Request) -> web.Response:
        await request.read()
        if request.path.endswith("/track"):
            return web.Response(body=TRACK_ACCEPTED, content_type="application/json")
        return web.Response(body=b"", content_type="application/x-protobuf")

    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.router.add_route("*", "/{tail:.*}", discard)
    uvloop.install()
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None)


def child_main(args: argparse.Namespace) -> int:
    import uvloop

    spec = json.loads(args.spec)
    if args.child == "open":
        uvloop.run(
            open_loop(
                spec["url"],
                spec["rate"],
                spec["seconds"],
                Path(spec["out"]),
                spec.get("tokens"),
            )
        )
    elif args.child == "closed":
        urls = spec["urls"]
        if "urls_file" in spec:
            urls = json.loads(Path(spec["urls_file"]).read_text())
        uvloop.run(
            closed_loop(
                urls,
                spec["concurrency"],
                spec["seconds"],
                spec["warmup"],
                Path(spec["out"]),
                spec.get("token"),
            )
        )
    elif args.child == "bare":
        from dronetesting.apps import serve_bare_json

        serve_bare_json(spec["port"], SMALL_JSON)
    elif args.child == "sink":
        serve_sink(spec["port"])
    return 0


def run_child(kind: str, spec: dict[str, Any], timeout: float) -> dict[str, Any]:
    """Run a load generator in its own process and return what it wrote."""
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as handle:
        out = Path(handle.name)
    spec = {**spec, "out": str(out)}
    try:
        subprocess.run(
            [sys.executable, str(ENTRY), "--child", kind, "--spec", json.dumps(spec)],
            check=True,
            timeout=timeout,
        )
        result: dict[str, Any] = json.loads(out.read_text())
        return result
    finally:
        out.unlink(missing_ok=True)


@contextlib.contextmanager
def server_child(kind: str) -> Iterator[int]:
    port = free_port()
    child = subprocess.Popen(
        [sys.executable, str(ENTRY), "--child", kind, "--spec", json.dumps({"port": port})],
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
                break
            if child.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the {kind} server did not start")
            time.sleep(0.05)
        yield port
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(child.pid, signal.SIGTERM)
        try:
            child.wait(timeout=10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(child.pid, signal.SIGKILL)
            child.wait(timeout=5)
