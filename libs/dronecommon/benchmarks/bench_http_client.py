"""Throughput and latency of the outbound HTTP client against a local server.

    uv run python libs/dronecommon/benchmarks/bench_http_client.py \
        --concurrency 20 --seconds 10 --json out.json

A minimal HTTP server answering a small JSON body runs in a *separate process* (aiohttp on uvloop by
default, optionally several processes sharing the port with SO_REUSEPORT, or uvicorn with uvloop and
httptools), so client and server never share an event loop. The client side runs on uvloop, as a
service does under uvicorn, and drives ``--concurrency`` callers, each sending GETs back to back
for ``--seconds`` after a warm-up, through:

- ``client``: ``create_http_client(...)`` — the resilient client (on one
  ``aiohttp.ClientSession``);
- ``raw``: a bare ``aiohttp.ClientSession`` (no retries, breaker, spans or limits): the floor
  this machine allows, to tell the client's own cost from aiohttp's, the server's and the
  kernel's.

It reports requests/s and p50/p90/p99/max latency per run and writes them, with the machine's
description, as JSON. ``--tracing sdk`` installs an OpenTelemetry SDK tracer provider (spans
batched to an exporter that drops them) to measure what recording a span per call costs.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

BODY = b'{"id":"bench","size":"Small","weight":10,"tag":"t"}'


# -- the server (child process) ------------------------------------------------------------------


def serve_aiohttp(port: int, processes: int) -> None:
    """Serve BODY on 127.0.0.1:port from ``processes`` aiohttp processes sharing the port."""
    if processes > 1:
        for _ in range(processes - 1):
            if os.fork() == 0:
                break
    import uvloop
    from aiohttp import web

    async def handler(request: web.Request) -> web.Response:
        return web.Response(body=BODY, content_type="application/json")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    uvloop.install()
    web.run_app(
        app,
        host="127.0.0.1",
        port=port,
        reuse_port=processes > 1,
        access_log=None,
        print=None,
        handle_signals=True,
    )


@contextlib.contextmanager
def server_process(kind: str, processes: int) -> Iterator[str]:
    """Start the server in a child process; yield its base URL; stop it."""
    from dronetesting.servers import free_port

    port = free_port()
    command = [sys.executable, __file__, "--serve", kind, "--port", str(port)]
    command += ["--server-processes", str(processes)]
    child = subprocess.Popen(command, start_new_session=True)
    try:
        deadline = time.monotonic() + 15
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
                break
            if child.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the {kind} server did not start")
            time.sleep(0.05)
        time.sleep(0.3)  # let every worker process bind
        yield f"http://127.0.0.1:{port}"
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(child.pid, 15)
        child.wait(timeout=10)


# -- the client side -----------------------------------------------------------------------------


def percentile(ordered: Sequence[float], fraction: float) -> float:
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]


async def drive(
    call: Callable[[], Awaitable[object]], concurrency: int, seconds: float, warmup: float
) -> dict[str, float | int]:
    """Run ``concurrency`` callers back to back; latencies of the measured window only."""
    latencies: list[float] = []
    errors = 0
    clock = time.perf_counter

    async def caller(until: float, record: bool) -> None:
        nonlocal errors
        while clock() < until:
            started = clock()
            try:
                await call()
            except Exception:
                errors += 1
                continue
            if record:
                latencies.append(clock() - started)

    await asyncio.gather(*(caller(clock() + warmup, False) for _ in range(concurrency)))
    errors = 0
    began, cpu_began = clock(), time.process_time()
    await asyncio.gather(*(caller(began + seconds, True) for _ in range(concurrency)))
    elapsed, cpu = clock() - began, time.process_time() - cpu_began
    latencies.sort()
    return {
        "requests": len(latencies),
        "errors": errors,
        "seconds": round(elapsed, 3),
        "requests_per_second": round(len(latencies) / elapsed, 1),
        "p50_ms": round(percentile(latencies, 0.50) * 1e3, 3),
        "p90_ms": round(percentile(latencies, 0.90) * 1e3, 3),
        "p99_ms": round(percentile(latencies, 0.99) * 1e3, 3),
        "max_ms": round(latencies[-1] * 1e3, 3) if latencies else float("nan"),
        # CPU time of the client process per request: the client's cost, whatever else runs.
        "client_cpu_us_per_request": round(cpu / max(1, len(latencies)) * 1e6, 1),
    }


async def run_client(transport: str, base_url: str, args: argparse.Namespace) -> dict[str, Any]:
    import aiohttp

    from dronecommon.httpclient import create_http_client
    from dronecommon.settings import HttpClientSettings

    if transport == "raw":
        async with aiohttp.ClientSession() as session:

            async def raw_call() -> bytes:
                async with session.get(base_url + "/api/packages/bench") as response:
                    return await response.read()

            return await drive(raw_call, args.concurrency, args.seconds, args.warmup)

    if transport != "client":
        raise ValueError(f"unknown path {transport!r}: use 'client' or 'raw'")
    settings = HttpClientSettings(max_connections=max(100, args.concurrency))
    client = create_http_client(settings, base_url=base_url, name="bench")
    async with client:

        async def call() -> object:
            response = await client.get("/api/packages/bench")
            if response.status_code != 200:
                raise RuntimeError(response.status_code)
            return response.json()

        return await drive(call, args.concurrency, args.seconds, args.warmup)


def install_tracing() -> None:
    from opentelemetry import trace
    from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
    from opentelemetry.sdk.trace.export import (
        BatchSpanProcessor,
        SpanExporter,
        SpanExportResult,
    )

    class Discard(SpanExporter):
        def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
            return SpanExportResult.SUCCESS

    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(Discard()))
    trace.set_tracer_provider(provider)


def machine() -> dict[str, Any]:
    versions = {}
    for package in ("aiohttp", "uvloop", "uvicorn", "opentelemetry-sdk"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            versions[package] = metadata.version(package)
    return {
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "versions": versions,
    }


def _line(result: dict[str, Any]) -> str:
    return (
        f"{result['requests_per_second']:>9.1f} req/s  p50 {result['p50_ms']:.2f} ms  "
        f"p90 {result['p90_ms']:.2f} ms  p99 {result['p99_ms']:.2f} ms  "
        f"max {result['max_ms']:.2f} ms  "
        f"client CPU {result['client_cpu_us_per_request']:.0f} us/req  errors {result['errors']}"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--transports", default="client,raw", help="comma list of: client, raw")
    parser.add_argument(
        "--rounds", type=int, default=1, help="repeat the runs, interleaved; report the median"
    )
    parser.add_argument("--server", choices=["aiohttp", "uvicorn"], default="aiohttp")
    parser.add_argument("--server-processes", type=int, default=1)
    parser.add_argument("--tracing", choices=["none", "sdk"], default="none")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--serve", choices=["aiohttp", "uvicorn"], help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.serve == "aiohttp":
        serve_aiohttp(args.port, args.server_processes)
        return 0
    if args.serve == "uvicorn":
        from dronetesting.apps import serve_bare_json

        serve_bare_json(args.port, BODY)
        return 0

    import uvloop

    if args.tracing == "sdk":
        install_tracing()
    runs: list[dict[str, Any]] = []
    load_before = os.getloadavg()
    with server_process(args.server, args.server_processes) as base_url:
        for round_number in range(args.rounds):
            for transport in args.transports.split(","):
                result = uvloop.run(run_client(transport, base_url, args))
                runs.append({"transport": transport, "round": round_number, **result})
                sys.stdout.write(f"{transport:8} {_line(result)}\n")
    summary = {}
    for transport in args.transports.split(","):
        mine = sorted(
            (run for run in runs if run["transport"] == transport),
            key=lambda run: run["requests_per_second"],
        )
        summary[transport] = mine[len(mine) // 2]  # the median run by throughput
    if args.rounds > 1:
        for transport, run in summary.items():
            sys.stdout.write(f"median {transport:8} {_line(run)}\n")
    report = {
        "benchmark": "dronecommon outbound HTTP client",
        "machine": machine(),
        "parameters": {
            "concurrency": args.concurrency,
            "seconds": args.seconds,
            "warmup": args.warmup,
            "server": args.server,
            "server_processes": args.server_processes,
            "tracing": args.tracing,
            "response_bytes": len(BODY),
        },
        "load_average_before": [round(value, 2) for value in load_before],
        "summary": summary,
        "runs": runs,
    }
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
