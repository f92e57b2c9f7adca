"""Tracking streams across real ``python -m delivery`` processes on one Redis: a watcher of
replica A sees the fixes replica B consumed, and SIGTERM closes the streams of a stopping
replica (which exits 0, promptly).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import os
import signal
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from httpx_sse import aconnect_sse

from dronecommon.domain import format_utc
from dronecommon.fixes import Phase
from dronecommon.testing.apps import start_service_process
from dronecommon.testing.servers import free_port

pytestmark = pytest.mark.slow

JSON = dict[str, Any]
BASE = "/api/deliveries"


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@contextlib.asynccontextmanager
async def replica(
    redis_url: str, log: Path, **env: str
) -> AsyncIterator[tuple[httpx.AsyncClient, asyncio.subprocess.Process]]:
    port = free_port()
    environment = {
        **os.environ,
        "DELIVERY_PORT": str(port),
        "DELIVERY_REDIS__URL": redis_url,
        "DELIVERY_LOG_LEVEL": "WARNING",
        "DELIVERY_TELEMETRY_STREAM__RECEIVE_WAIT": "0.1",
        **env,
    }
    process = await start_service_process("delivery", environment, log, port=port)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            yield client, process
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def test_a_watcher_of_one_replica_sees_what_another_consumed(
    redis_url: str, tmp_path: Path, fleet: Any, new_delivery: Callable[..., JSON]
) -> None:
    no_consumer = {"DELIVERY_LIVE__CONSUMER": "false"}
    async with (
        replica(redis_url, tmp_path / "a.log", **no_consumer) as (a, _),
        replica(redis_url, tmp_path / "b.log") as (_b, _),
    ):
        body = new_delivery(
            "x-1",
            pickupETA=format_utc(now() + dt.timedelta(minutes=10)),
            deliveryETA=format_utc(now() + dt.timedelta(minutes=30)),
        )
        assert (await a.put(f"{BASE}/x-1", json=body)).status_code == 201
        seen: list[JSON] = []
        async with aconnect_sse(a, "GET", f"{BASE}/public/x-1/tracking") as source:
            events = source.aiter_sse()
            seen.append(json.loads((await anext(events)).data))
            for step in range(3):
                await fleet.publish(
                    fleet.fix("x-1", now(), Phase.TO_PICKUP, 47.55 + step * 0.01, -122.33)
                )
                event = await asyncio.wait_for(anext(events), 5)
                seen.append(json.loads(event.data))
        assert seen[0]["telemetry"] == "none"
        latitudes = [round(s["drone"]["location"]["latitude"], 6) for s in seen[1:]]
        assert latitudes == [47.55, 47.56, 47.57]
        assert all(status["telemetry"] == "live" for status in seen[1:])
        groups: Any = await fleet.redis.xinfo_consumers("telemetry:fixes", "delivery")
        assert len(groups) == 1  # only B consumes


async def test_sigterm_closes_the_streams_and_the_replica_exits(
    redis_url: str, tmp_path: Path, new_delivery: Callable[..., JSON]
) -> None:
    async with replica(redis_url, tmp_path / "c.log") as (client, process):
        assert (await client.put(f"{BASE}/x-2", json=new_delivery("x-2"))).status_code == 201
        async with aconnect_sse(client, "GET", f"{BASE}/x-2/tracking") as source:
            events = source.aiter_sse()
            assert (await anext(events)).event == "status"
            started = asyncio.get_running_loop().time()
            process.send_signal(signal.SIGTERM)
            with contextlib.suppress(StopAsyncIteration, httpx.RemoteProtocolError):
                while True:  # the stream ends: no event, no end marker
                    event = await asyncio.wait_for(anext(events), 10)
                    assert event.event != "end"
        assert await asyncio.wait_for(process.wait(), 10) == 0
        assert asyncio.get_running_loop().time() - started < 5
