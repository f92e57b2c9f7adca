"""How many drones in flight one simulator process carries: CPU per simulated second, fixes/s.

Starts a redis-server on a free port, puts ``--drones`` drones in the air (deliveries between
random points of the service area from the default bases, at real speed so none lands during the
run), stores their flights, and runs the simulator's tick loop (:meth:`Engine.run_ticks`: every
drone's fix each ``--interval`` seconds, spread over the interval, published to the Redis
telemetry stream) for ``--seconds``. Reports the simulator process's CPU seconds per simulated
second, drones in flight per core at that rate, fixes published per second, late ticks, and the
Redis server's CPU.

    uv run --all-packages python services/simulator/benchmarks/bench_fleet.py --drones 10000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import tempfile
import time
from pathlib import Path

from redis.asyncio import Redis

from dronecommon.fixes.redis_streams import RedisFixPublisher
from dronecommon.httpclient import create_http_client
from dronecommon.settings import HttpClientSettings
from dronetesting.servers import RedisServer
from simulator.backends import Backends
from simulator.engine import Engine
from simulator.flight import Point, Weather
from simulator.flights import DroneInfo, Mission, Rules
from simulator.store import FlightStore

BASES = [
    Point(47.7063, -122.3250),
    Point(47.6687, -122.3845),
    Point(47.6615, -122.3131),
    Point(47.6062, -122.3321),
    Point(47.5613, -122.3864),
    Point(47.5480, -122.2740),
]


def _place(rng: random.Random) -> Point:
    return Point(rng.uniform(47.50, 47.75), rng.uniform(-122.45, -122.20))


async def run(args: argparse.Namespace) -> dict[str, object]:
    rng = random.Random(7)
    with tempfile.TemporaryDirectory() as folder, RedisServer(Path(folder)) as server:
        redis = Redis.from_url(server.url)
        rules = Rules(Weather(), handling=60.0)
        dead = "http://127.0.0.1:9"  # the tick loop calls no other service
        backends = Backends(
            delivery=create_http_client(HttpClientSettings(), base_url=dead, name="delivery"),
            dronescheduler=create_http_client(HttpClientSettings(), base_url=dead, name="ds"),
        )
        publisher = RedisFixPublisher(redis, maxlen=args.maxlen)
        store = FlightStore(redis)
        engine = Engine(
            rules,
            store,
            publisher,
            backends,
            interval=args.interval,
            ticks_per_interval=args.ticks,
        )
        now = time.time()
        for number in range(args.drones):
            base = BASES[number % len(BASES)]
            drone = DroneInfo(f"bench-{number:06d}", base, 40.0, 50.0, 120.0)
            mission = Mission(f"d-{number}", _place(rng), _place(rng), "None", False)
            flight = rules.new_flight(drone, mission, now - rng.uniform(0, 120))
            engine.put(flight)
        await engine.flush()
        stop = asyncio.Event()
        # Redis's CPU is part of the cost.
        redis_cpu, cpu, started = server.cpu_seconds(), time.process_time(), time.monotonic()
        task = asyncio.create_task(engine.run_ticks(stop))
        await asyncio.sleep(args.seconds)
        stop.set()
        await task
        wall = time.monotonic() - started
        cpu = time.process_time() - cpu
        redis_cpu = server.cpu_seconds() - redis_cpu
        in_flight = sum(1 for f in engine.flights.values() if not f.landed(time.time()))
        await backends.aclose()
        await redis.aclose()
    per_second = cpu / wall
    return {
        "drones": args.drones,
        "in_flight_at_end": in_flight,
        "interval_s": args.interval,
        "seconds": round(wall, 2),
        "cpu_s_per_simulated_s": round(per_second, 3),
        "drones_per_core": int(in_flight / per_second) if per_second else None,
        "fixes_per_s": round(engine.stats.fixes / wall, 1),
        "late_ticks": engine.stats.late_ticks,
        "publish_errors": engine.stats.publish_errors,
        "redis_cpu_s_per_s": round(redis_cpu / wall, 3),
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--drones", type=int, default=10_000)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--interval", type=float, default=1.0)
    parser.add_argument("--ticks", type=int, default=10)
    parser.add_argument("--maxlen", type=int, default=100_000)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    result = asyncio.run(run(args))
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
