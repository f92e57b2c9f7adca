"""Everything the simulator holds while it runs, built and closed in one place.

:func:`running` is the body of the app's lifespan: it makes the clients (Redis for the flight
state and the events, the telemetry publisher, the HTTP clients with the outbound token), the
engine and the pilot, registers readiness and starts flying; on the way out (SIGTERM) it stops
flying, saves the state, gives the lease up and closes every client (``AsyncExitStack``, in
reverse order).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TypedDict

from dronecommon import ServiceApp
from dronecommon.auth.clients import create_redis_client
from dronecommon.auth.credentials import credential_for, outbound_token_provider
from dronecommon.events import EventReader
from dronecommon.fixes import create_fix_publisher
from dronecommon.httpclient import ResilientClient, create_http_client, create_probe_client

from .backends import Backends
from .engine import Engine
from .flight import Weather
from .flights import Rules
from .pilot import Pilot
from .settings import SimulatorSettings
from .store import FlightStore

EVENTS_CONSUMER = "simulator"


class State(TypedDict):
    engine: Engine
    pilot: Pilot


def rules_of(settings: SimulatorSettings) -> Rules:
    weather = Weather(
        seed=settings.wind_seed,
        strength=settings.wind_strength,
        gust=settings.gust_strength,
        climb_miles=settings.climb_miles,
        drain_per_mile=100.0 / settings.battery_range_miles,
    )
    return Rules(weather, handling=settings.handling_seconds, speed_factor=settings.speed_factor)


def _health(probe: ResilientClient, url: str) -> Callable[[], Awaitable[None]]:
    async def check() -> None:
        response = await probe.get(url.rstrip("/") + "/healthz")
        if response.status_code != 200:
            raise RuntimeError(f"/healthz answered {response.status_code}")

    return check


@contextlib.asynccontextmanager
async def running(app: ServiceApp, settings: SimulatorSettings) -> AsyncIterator[State]:
    async with contextlib.AsyncExitStack() as stack:
        credential = await stack.enter_async_context(
            credential_for(
                redis=settings.redis,
                outbound=settings.auth,
                telemetry_stream=settings.telemetry_stream,
            )
        )
        redis = create_redis_client(settings.redis, credential)
        stack.push_async_callback(redis.aclose)
        # A blocking XREADGROUP waits up to a second: its socket timeout must outlast it.
        events_redis = create_redis_client(
            settings.redis, credential, socket_timeout=max(5.0, settings.redis.socket_timeout)
        )
        stack.push_async_callback(events_redis.aclose)
        clients = {}
        for name, url in (
            ("delivery", settings.delivery_url),
            ("dronescheduler", settings.dronescheduler_url),
        ):
            # One audience per service: a token for each, with the role the drones hold on it.
            tokens = outbound_token_provider(
                settings.auth, credential, caller="simulator", target=name
            )
            if tokens is not None:
                stack.push_async_callback(tokens.close)
            clients[name] = create_http_client(
                settings.http,
                base_url=url,
                name=name,
                token_provider=tokens.token if tokens is not None else None,
            )
        backends = Backends(
            delivery=clients["delivery"],
            dronescheduler=clients["dronescheduler"],
            cache_seconds=settings.drone_cache_seconds,
        )
        stack.push_async_callback(backends.aclose)
        publisher = create_fix_publisher(
            settings.telemetry_stream, redis=redis, credential=credential
        )
        stack.push_async_callback(publisher.close)
        probe = create_probe_client(settings.downstream_health_timeout)
        stack.push_async_callback(probe.aclose)

        store = FlightStore(redis, prefix=settings.key_prefix, finished_ttl=settings.finished_ttl)
        engine = Engine(
            rules_of(settings),
            store,
            publisher,
            backends,
            interval=settings.telemetry_interval,
            ticks_per_interval=settings.ticks_per_interval,
            events_max_age=settings.events_max_age,
            action_concurrency=settings.action_concurrency,
            action_retry_max=settings.action_retry_max,
        )

        def reader() -> EventReader:
            return EventReader(
                events_redis,
                settings.events_group,
                EVENTS_CONSUMER,
                prefix=settings.delivery_key_prefix,
                batch_size=settings.events_batch,
                start_id="$" if settings.events_start_at_latest else "0",
            )

        pilot = Pilot(engine, store, reader, leader_ttl=settings.leader_ttl)
        task = asyncio.create_task(pilot.run(), name="simulator-pilot")
        stack.push_async_callback(pilot.stop, task)

        checks = app.readiness
        checks.add("redis", store.ping)
        checks.add("events", reader().check_ready)
        checks.add(
            "telemetry",
            publisher.check_ready,
            timeout=settings.telemetry_stream.readiness_timeout + 0.5,
        )
        checks.add(
            "dronescheduler",
            _health(probe, settings.dronescheduler_url),
            timeout=settings.downstream_health_timeout + 0.5,
        )
        checks.add("pilot", pilot.check)
        yield {"engine": engine, "pilot": pilot}
