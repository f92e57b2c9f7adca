"""How many fixes per second one delivery replica's telemetry consumer folds in, per core.

Starts a redis-server on a free port, creates ``--drones`` deliveries (one drone each), publishes
``--fixes`` fixes for them on the telemetry stream as the simulator does (one fix per drone per
simulated second, a hundred per stream entry; each drone flies ToPickup, AtPickup, ToDropoff,
AtDropoff in turn, so phase changes, PickedUp and EtaChanged happen on the way), then runs the
consumer exactly as the service does (``RedisFixConsumer`` → ``TelemetryConsumer``, on uvloop)
over that backlog and times it. Reports fixes/s (wall), the consumer process's CPU seconds and
fixes per CPU second (per core), the Redis server's CPU, and checks the result (every delivery at
its drone's last fix, its four phase changes in the history, one PickedUp each).

    uv run --all-packages python services/delivery/benchmarks/bench_consumer.py \\
        --drones 1000 --fixes 100000
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import tempfile
import time
from pathlib import Path

import uvloop

from delivery.consumer import TelemetryConsumer
from delivery.live import Live
from delivery.livestore import LiveStore
from delivery.repository import DeliveryRepository
from delivery.schemas import DeliveryIn
from delivery.service import DeliveryService
from delivery.settings import DeliverySettings, FixStreamSettings
from dronecommon.domain import utcnow
from dronecommon.events import EventType, read_range
from dronecommon.fixes import Fix, Phase, create_fix_consumer
from dronecommon.fixes.redis_streams import RedisFixPublisher
from dronecommon.redis import create_redis_client
from dronecommon.settings import RedisSettings
from dronetesting.servers import RedisServer

PICKUP = (47.60, -122.33)
DROPOFF = (47.70, -122.20)


def _phase(step: int, steps: int) -> tuple[Phase, float]:
    """The phase and the share of its leg flown at ``step`` of ``steps``."""
    share = step / steps
    if share < 0.4:
        return Phase.TO_PICKUP, share / 0.4
    if share < 0.5:
        return Phase.AT_PICKUP, 0.0
    if share < 0.9:
        return Phase.TO_DROPOFF, (share - 0.5) / 0.4
    return Phase.AT_DROPOFF, 1.0


def fixes_of(drones: int, steps: int, start: dt.datetime) -> list[Fix]:
    out: list[Fix] = []
    for step in range(steps):
        at = start + dt.timedelta(seconds=step)
        phase, share = _phase(step, steps)
        if phase is Phase.TO_PICKUP:
            lat, lon = PICKUP[0] - 0.05 * (1 - share), PICKUP[1]
        elif phase is Phase.TO_DROPOFF:
            lat = PICKUP[0] + (DROPOFF[0] - PICKUP[0]) * share
            lon = PICKUP[1] + (DROPOFF[1] - PICKUP[1]) * share
        else:
            lat, lon = PICKUP if phase is Phase.AT_PICKUP else DROPOFF
        airborne = phase in (Phase.TO_PICKUP, Phase.TO_DROPOFF)
        out.extend(
            Fix(
                drone_id=f"bench-{number:06d}",
                delivery_id=f"delivery-{number:06d}",
                at=at,
                seq=step + 1,
                latitude=lat,
                longitude=lon,
                altitude=120.0 if airborne else 0.0,
                speed_mph=(35.0 + number % 10) if airborne else 0.0,
                heading_deg=45.0,
                battery_pct=100.0 - step * 0.01,
                phase=phase,
            )
            for number in range(drones)
        )
    return out


async def run(args: argparse.Namespace) -> dict[str, object]:
    with (
        tempfile.TemporaryDirectory() as folder,
        RedisServer(Path(folder), persist=args.persist) as server,
    ):
        # The service's own clients (dronecommon.redis.create_redis_client), shaped as its
        # runtime shapes them.
        settings = DeliverySettings(redis=RedisSettings(url=server.url))
        redis = create_redis_client(settings.redis, decode_responses=True)
        repository = DeliveryRepository(redis)
        service = DeliveryService(repository, settings, utcnow)
        start = utcnow()
        plan = {
            "pickupETA": (start + dt.timedelta(minutes=2)).isoformat(),
            "deliveryETA": (start + dt.timedelta(minutes=6)).isoformat(),
        }
        for number in range(args.drones):
            body = DeliveryIn.model_validate(
                {
                    "owner": {"userId": "bench", "accountId": "bench"},
                    "pickup": {"latitude": PICKUP[0], "longitude": PICKUP[1]},
                    "dropoff": {"latitude": DROPOFF[0], "longitude": DROPOFF[1]},
                    "confirmationRequired": "None",
                    "droneId": f"bench-{number:06d}",
                    **plan,
                }
            )
            await service.create(f"delivery-{number:06d}", body)
        steps = max(1, args.fixes // args.drones)
        fixes = fixes_of(args.drones, steps, start)
        publisher = RedisFixPublisher(
            redis, maxlen=len(fixes), fixes_per_entry=args.fixes_per_entry
        )
        for chunk in range(0, len(fixes), 10_000):
            await publisher.publish(fixes[chunk : chunk + 10_000])

        stream = FixStreamSettings(
            start_at_latest=False,
            max_batch=args.batch,
            fixes_per_entry=args.fixes_per_entry,
            receive_wait=0.1,
        )
        reader_redis = create_redis_client(settings.redis, socket_timeout=10)
        source = create_fix_consumer(stream, consumer="bench", redis=reader_redis)
        store = LiveStore(redis, repository, trail_length=120, drone_fix_ttl=3600)
        consumer = TelemetryConsumer(store, service.rules, service.estimates, utcnow)

        redis_cpu = server.cpu_seconds()  # its CPU is reported too
        cpu, wall = time.process_time(), time.perf_counter()
        task = asyncio.create_task(source.run(consumer.handle))
        while consumer.stats.fixes < len(fixes):
            await asyncio.sleep(0.01)
            if task.done():
                task.result()
        wall = time.perf_counter() - wall
        cpu = time.process_time() - cpu
        redis_cpu = server.cpu_seconds() - redis_cpu
        await source.stop()
        await task

        # The result is the one expected.
        events = await read_range(redis)
        picked = sum(e.type is EventType.PICKED_UP for e in events)
        eta_changed = sum(e.type is EventType.ETA_CHANGED for e in events)
        sample = [f"delivery-{n:06d}" for n in range(0, args.drones, max(1, args.drones // 20))]
        for delivery_id in sample:
            live = Live.loads(await redis.hget(f"delivery:{{{delivery_id}}}", "live") or "")
            assert live.seq == steps, (delivery_id, live.seq)
            history = await service.history(delivery_id)
            assert [e.phase for e in history if e.phase] == [
                Phase.TO_PICKUP,
                Phase.AT_PICKUP,
                Phase.TO_DROPOFF,
                Phase.AT_DROPOFF,
            ], delivery_id
        assert picked == args.drones, picked
        await redis.aclose()
        await reader_redis.aclose()
        stats = consumer.stats
        return {
            "drones": args.drones,
            "fixes": len(fixes),
            "redis_append_only": args.persist,
            "batch": args.batch,
            "seconds": round(wall, 3),
            "fixes_per_second": round(len(fixes) / wall),
            "consumer_cpu_seconds": round(cpu, 3),
            "fixes_per_cpu_second": round(len(fixes) / cpu),
            "cpu_microseconds_per_fix": round(cpu / len(fixes) * 1e6, 1),
            "redis_cpu_seconds": round(redis_cpu, 3),
            "applied": stats.applied,
            "superseded": stats.superseded,
            "ignored": stats.ignored,
            "conflicts": stats.conflicts,
            "picked_up_events": picked,
            "eta_changed_events": eta_changed,
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--drones", type=int, default=1000)
    parser.add_argument("--fixes", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=500, help="fixes per handler call")
    parser.add_argument("--fixes-per-entry", type=int, default=100)
    parser.add_argument(
        "--persist",
        action="store_true",
        help="Redis with its append-only file, as the native stack runs it (default: in memory)",
    )
    parser.add_argument("--json", type=Path, help="also write the result here")
    args = parser.parse_args()
    result = uvloop.run(run(args))
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
