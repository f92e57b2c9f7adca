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
from dronetesting.apps import start_service_process
from dronetesting.servers import free_port
from dronetesting.tokens import LocalIssuer

pytestmark = pytest.mark.slow

JSON = dict[str, Any]
BASE = "/api/deliveries"


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def auth_env(issuer: LocalIssuer) -> dict[str, str]:
    """Tokens on, as deployed: the test issuer's settings as the process reads them."""
    settings = issuer.settings
    return {
        "DELIVERY_AUTH__ENABLED": "true",
        "DELIVERY_AUTH__ISSUER": str(settings.issuer),
        "DELIVERY_AUTH__AUDIENCE": str(settings.audience),
        "DELIVERY_AUTH__PUBLIC_AUDIENCE": str(settings.public_audience),
        "DELIVERY_AUTH__JWKS_FILE": str(settings.jwks_file),
    }


@contextlib.asynccontextmanager
async def replica(
    redis_url: str, log: Path, issuer: LocalIssuer, **env: str
) -> AsyncIterator[tuple[httpx.AsyncClient, asyncio.subprocess.Process]]:
    port = free_port()
    environment = {
        **os.environ,
        "DELIVERY_PORT": str(port),
        "DELIVERY_REDIS__URL": redis_url,
        "DELIVERY_LOG_LEVEL": "WARNING",
        "DELIVERY_TELEMETRY_STREAM__RECEIVE_WAIT": "0.1",
        **auth_env(issuer),
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
    redis_url: str,
    tmp_path: Path,
    fleet: Any,
    new_delivery: Callable[..., JSON],
    dev_issuer: LocalIssuer,
) -> None:
    no_consumer = {"DELIVERY_LIVE__CONSUMER": "false"}
    async with (
        replica(redis_url, tmp_path / "a.log", dev_issuer, **no_consumer) as (a, _),
        replica(redis_url, tmp_path / "b.log", dev_issuer) as (_b, _),
    ):
        body = new_delivery(
            "x-1",
            pickupETA=format_utc(now() + dt.timedelta(minutes=10)),
            deliveryETA=format_utc(now() + dt.timedelta(minutes=30)),
        )
        writer = dev_issuer.service("Deliveries.Write")
        assert (await a.put(f"{BASE}/x-1", json=body, headers=writer)).status_code == 201
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
    redis_url: str, tmp_path: Path, new_delivery: Callable[..., JSON], dev_issuer: LocalIssuer
) -> None:
    async with replica(redis_url, tmp_path / "c.log", dev_issuer) as (client, process):
        writer = dev_issuer.service("Deliveries.Write")
        created = await client.put(f"{BASE}/x-2", json=new_delivery("x-2"), headers=writer)
        assert created.status_code == 201
        owner = dev_issuer.customer("account-1", "owner-1")  # the delivery's owner
        async with aconnect_sse(client, "GET", f"{BASE}/x-2/tracking", headers=owner) as source:
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
