"""How fast one workflow process drains the queue, by concurrency (the defaults' measurement).

    uv run python services/workflow/benchmarks/bench_consumer.py [--messages 2000] [--latency 0.005]

Starts a redis-server, a stand-in for the three downstream services in its own process (every
call answers after ``--latency`` seconds, like a fast backend), and ``python -m workflow`` with each
``--concurrency`` value; enqueues ``--messages`` delivery requests and times the drain. Each
message costs the workflow two Redis reads and three HTTP calls. Tokens are on, as in
``make run`` (:meth:`dronetesting.stack.StackConfig.auth_env`: the workflow mints its outbound
tokens with a development issuer in the temporary folder; the stand-in does not check them).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

from redis.asyncio import Redis

from dronecommon.messaging import OutgoingMessage
from dronecommon.messaging.redis_streams import RedisStreamSender, stream_key
from dronetesting.apps import wait_ready
from dronetesting.samples import sample_request
from dronetesting.servers import RedisServer, free_port
from dronetesting.stack import StackConfig

FAKE = """
import asyncio, datetime as dt, sys
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
import uvicorn

latency = float(sys.argv[2])
app = FastAPI()

@app.get("/healthz")
async def healthz():
    return {"status": "ok"}

@app.api_route("/api/{collection}/{item}", methods=["PUT", "PATCH", "DELETE", "GET"])
async def route(collection: str, item: str, request: Request):
    await request.body()
    if latency:
        await asyncio.sleep(latency)
    if collection == "dronedeliveries" and request.method == "PUT":
        now = dt.datetime.now(dt.UTC)
        return JSONResponse({"deliveryId": item, "droneId": "d-" + item,
            "pickupETA": (now + dt.timedelta(minutes=5)).isoformat(),
            "deliveryETA": (now + dt.timedelta(minutes=20)).isoformat()}, status_code=201)
    return Response(status_code=201 if request.method == "PUT" else 204)

uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning",
            loop="uvloop", http="httptools")
"""


async def run_once(
    redis_url: str, fake_url: str, concurrency: int, messages: int, auth_env: dict[str, str]
) -> float:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WORKFLOW_", "OTEL_"))}
    env.update(
        {
            "WORKFLOW_PORT": str(port),
            "WORKFLOW_REDIS__URL": redis_url,
            "WORKFLOW_QUEUE__MAX_CONCURRENCY": str(concurrency),
            "WORKFLOW_QUEUE__PREFETCH": str(concurrency),
            "WORKFLOW_PACKAGE_URL": fake_url,
            "WORKFLOW_DRONESCHEDULER_URL": fake_url,
            "WORKFLOW_DELIVERY_URL": fake_url,
            "WORKFLOW_LOG_LEVEL": "WARNING",
            **auth_env,
        }
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "workflow", env=env, stdout=asyncio.subprocess.DEVNULL
    )
    try:
        await wait_ready(f"http://127.0.0.1:{port}", within=30, process=process)
        sender = RedisStreamSender.from_url(redis_url, "deliveryrequests")
        batch = [
            OutgoingMessage(
                body=json.dumps(
                    sample_request(ownerId="bench", deliveryId=str(uuid.uuid4()))
                ).encode(),
                message_id=str(uuid.uuid4()),
                properties={"operation": "delivery"},
            )
            for _ in range(messages)
        ]
        redis = Redis.from_url(redis_url)
        started = time.perf_counter()
        for start in range(0, messages, 500):
            await sender.send_many(batch[start : start + 500])
        while await redis.xlen(stream_key("deliveryrequests")):  # noqa: ASYNC110 - polling Redis
            await asyncio.sleep(0.02)
        elapsed = time.perf_counter() - started
        await redis.aclose()
        await sender.close()
        return messages / elapsed
    finally:
        with contextlib.suppress(ProcessLookupError):  # it may have exited (wait_ready says why)
            process.terminate()
        await asyncio.wait_for(process.wait(), 30)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--latency", type=float, default=0.005)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[8, 16, 32, 64])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, RedisServer(Path(tmp) / "redis") as redis:
        tokens = StackConfig(data_dir=Path(tmp))
        tokens.dev_issuer()  # its key and JWKS in <tmp>/dev-issuer
        fake_port = free_port()
        fake = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            FAKE,
            str(fake_port),
            str(args.latency),
            stdout=asyncio.subprocess.DEVNULL,
        )
        try:
            fake_url = f"http://127.0.0.1:{fake_port}"
            await wait_ready(fake_url, within=30, path="/healthz", process=fake)
            print(f"{args.messages} delivery messages, backend latency {args.latency * 1000:g} ms")
            for concurrency in args.concurrency:
                rate = await run_once(
                    redis.url, fake_url, concurrency, args.messages, tokens.auth_env("workflow")
                )
                print(f"  concurrency {concurrency:>3}: {rate:7.0f} messages/s")
        finally:
            fake.terminate()
            await asyncio.wait_for(fake.wait(), 10)


if __name__ == "__main__":
    asyncio.run(main())
