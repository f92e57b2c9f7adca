"""How many e-mail notifications a second one notifier process sends, and what each costs.

Starts a redis-server and a Mailpit on free ports, then runs the notifier app in this process (its
lifespan: the events reader, the intake, the outbox and the senders, on uvloop, services' logs at
WARNING) with e-mail over SMTP to the Mailpit. Each delivery's events are the ones a notified
delivery has (``Assigned``, ``PickedUp``, ``Completed``), each naming one recipient, so one e-mail
per event. Two measurements, each with the SMTP connections pooled (the default) and with one
connection per message (``pool_size=0``, the earlier behaviour), interleaved:

- **backlog**: the notifier started, then ``--deliveries`` deliveries' events appended at once;
  the time until every e-mail is in Mailpit's inbox gives notifications/s, and this process's CPU
  (the notifier; the bench only appends and polls Mailpit's message count) gives the CPU per
  notification;
- **paced**: events appended at ``--rate`` a second for ``--seconds`` to a running notifier; the
  delay from each event's time to its e-mail's arrival in the inbox (Mailpit's ``Created``),
  p50/p90/p99.

    uv run --all-packages python services/notifier/benchmarks/bench_notifier.py --deliveries 1000
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import logging
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import uvloop
from redis.asyncio import Redis

from dronecommon.domain import Location, utcnow
from dronecommon.events import (
    AssignedData,
    ClosedData,
    Contact,
    DeliveryEvent,
    EventType,
    PickedUpData,
    Recipients,
    append,
    encode,
    events_stream,
)
from dronecommon.settings import RedisSettings
from dronetesting.apps import app_client
from dronetesting.servers import MailpitServer, RedisServer, free_port
from notifier.main import create_app
from notifier.settings import EmailSettings, NotifierAuthSettings, NotifierSettings, SmtpSettings

PICKUP = Location(latitude=47.6497, longitude=-122.3321, altitude=0.0)
DROPOFF = Location(latitude=47.6497, longitude=-122.2676, altitude=0.0)


def events_of(delivery_id: str, at: dt.datetime) -> list[DeliveryEvent]:
    """A notified delivery's three told events, one recipient each."""
    notify = Recipients(
        account_id="acme", requests=[Contact(email_address=f"{delivery_id}@example.com")]
    )
    eta = at + dt.timedelta(minutes=10)
    return [
        DeliveryEvent.of(
            EventType.ASSIGNED,
            delivery_id,
            at,
            AssignedData(
                drone_id="drone-1",
                pickup=PICKUP,
                dropoff=DROPOFF,
                pickupETA=at + dt.timedelta(minutes=2),
                deliveryETA=eta,
                notify=notify,
            ),
        ),
        DeliveryEvent.of(
            EventType.PICKED_UP,
            delivery_id,
            at,
            PickedUpData(drone_id="drone-1", at=at, location=PICKUP, notify=notify),
        ),
        DeliveryEvent.of(
            EventType.COMPLETED,
            delivery_id,
            at,
            ClosedData(drone_id="drone-1", at=at, location=DROPOFF, notify=notify),
        ),
    ]


class Inbox:
    def __init__(self, mailpit: MailpitServer) -> None:
        self.client = httpx.AsyncClient(base_url=mailpit.url, timeout=30)

    async def total(self) -> int:
        listed = (await self.client.get("/api/v1/messages", params={"limit": 1})).json()
        return int(listed["total"])

    async def wait_for(self, count: int, within: float) -> None:
        deadline = time.monotonic() + within
        while (found := await self.total()) < count:
            if time.monotonic() > deadline:
                raise SystemExit(f"only {found} of {count} e-mails arrived within {within:g} s")
            await asyncio.sleep(0.05)

    async def arrivals(self) -> dict[str, dt.datetime]:
        """Recipient (``<delivery id>@example.com``) → when the inbox took the e-mail."""
        listed = (await self.client.get("/api/v1/messages", params={"limit": 1_000_000})).json()
        return {
            m["To"][0]["Address"]: dt.datetime.fromisoformat(m["Created"])
            for m in listed["messages"]
        }

    async def clear(self) -> None:
        (await self.client.delete("/api/v1/messages")).raise_for_status()


def settings_for(redis_url: str, mailpit: MailpitServer, pool_size: int) -> NotifierSettings:
    return NotifierSettings(
        redis=RedisSettings(url=redis_url),
        events_start_at_latest=False,
        auth=NotifierAuthSettings(enabled=False),
        log_json=False,
        log_level="WARNING",
        delivery_url=f"http://127.0.0.1:{free_port()}",  # never called: events name recipients
        email=EmailSettings(smtp=SmtpSettings(port=mailpit.smtp_port, pool_size=pool_size)),
        key_prefix=f"notifier-{pool_size}-{time.monotonic_ns()}",
        events_group=f"notifier-{time.monotonic_ns()}",
    )


async def backlog(
    redis: Redis, inbox: Inbox, settings: NotifierSettings, deliveries: int, within: float
) -> dict[str, Any]:
    await inbox.clear()
    await redis.delete("delivery:events")
    at = utcnow()
    backlog = [
        encode(event)
        for number in range(deliveries)
        for event in events_of(f"b{number:06d}-{at.timestamp():.0f}", at)
    ]
    emails = 3 * deliveries
    async with app_client(create_app(settings, configure_logs=False)):
        await asyncio.sleep(1)  # started: the reader waits on the empty stream
        # Appended in one pipeline (some 20 µs of this process's CPU an event, counted).
        cpu, wall = time.process_time(), time.perf_counter()
        async with redis.pipeline(transaction=False) as pipe:
            for fields in backlog:
                pipe.xadd(events_stream(), dict(zip(fields[0::2], fields[1::2], strict=True)))
            await pipe.execute()
        await inbox.wait_for(emails, within)
        wall = time.perf_counter() - wall
        cpu = time.process_time() - cpu
    return {
        "emails": emails,
        "seconds": round(wall, 3),
        "notifications_per_second": round(emails / wall, 1),
        "cpu_seconds": round(cpu, 3),
        "cpu_ms_per_notification": round(cpu / emails * 1e3, 3),
    }


async def paced(
    redis: Redis, inbox: Inbox, settings: NotifierSettings, rate: float, seconds: float
) -> dict[str, Any]:
    await inbox.clear()
    await redis.delete("delivery:events")
    told: dict[str, dt.datetime] = {}
    count = int(rate * seconds)
    async with app_client(create_app(settings, configure_logs=False)):
        started = time.perf_counter()
        for number in range(count):
            await asyncio.sleep(max(0.0, started + number / rate - time.perf_counter()))
            at = utcnow()
            event = events_of(f"p{number:06d}-{at.timestamp():.0f}", at)[number % 3]
            await append(redis, event, maxlen=10 * count)
            told[event.delivery_id] = at
        await inbox.wait_for(count, within=60)
    arrivals = await inbox.arrivals()
    delays = sorted(
        (arrivals[f"{delivery_id}@example.com"] - at).total_seconds() * 1e3
        for delivery_id, at in told.items()
    )

    def pct(q: float) -> float:
        return round(delays[min(len(delays) - 1, int(q * len(delays)))], 1)

    return {
        "emails": count,
        "rate": rate,
        "delay_ms_p50": round(statistics.median(delays), 1),
        "delay_ms_p90": pct(0.9),
        "delay_ms_p99": pct(0.99),
        "delays_matched": len(delays),
    }


async def run(args: argparse.Namespace) -> dict[str, Any]:
    logging.getLogger().setLevel(logging.WARNING)
    with (
        tempfile.TemporaryDirectory() as folder,
        RedisServer(Path(folder) / "redis") as redis_server,
        MailpitServer(Path(folder) / "mailpit") as mailpit,
    ):
        redis = Redis.from_url(redis_server.url)
        inbox = Inbox(mailpit)
        rows: dict[str, list[dict[str, Any]]] = {}
        for _round in range(args.rounds):
            for pool in (args.pool, 0):
                settings = settings_for(redis_server.url, mailpit, pool)
                mailpit_cpu = mailpit.cpu_seconds()
                row = await backlog(redis, inbox, settings, args.deliveries, args.within)
                row["mailpit_cpu_ms_per_notification"] = round(
                    (mailpit.cpu_seconds() - mailpit_cpu) / row["emails"] * 1e3, 3
                )
                if args.rate > 0:
                    settings = settings_for(redis_server.url, mailpit, pool)
                    row["paced"] = await paced(redis, inbox, settings, args.rate, args.seconds)
                rows.setdefault(f"pool_size={pool}", []).append(row)
                print(f"pool_size={pool}: {json.dumps(row)}", flush=True)
        await redis.aclose()
        await inbox.client.aclose()
    pooled, single = rows[f"pool_size={args.pool}"], rows["pool_size=0"]
    return {
        "deliveries": args.deliveries,
        "rounds": rows,
        "pooled_vs_one_per_message": {
            "notifications_per_second": round(
                statistics.mean(p["notifications_per_second"] for p in pooled)
                / statistics.mean(s["notifications_per_second"] for s in single),
                3,
            ),
            "cpu_per_notification": round(
                statistics.mean(p["cpu_ms_per_notification"] for p in pooled)
                / statistics.mean(s["cpu_ms_per_notification"] for s in single),
                3,
            ),
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deliveries", type=int, default=1000, help="three e-mails each")
    parser.add_argument("--pool", type=int, default=16, help="pool_size of the pooled rows")
    parser.add_argument("--rounds", type=int, default=2, help="times over both rows, interleaved")
    parser.add_argument("--rate", type=float, default=50, help="paced e-mails/s (0: none)")
    parser.add_argument("--seconds", type=float, default=10, help="of the paced run")
    parser.add_argument("--within", type=float, default=300, help="seconds the backlog may take")
    parser.add_argument("--json", type=Path, help="also write the result here")
    args = parser.parse_args()
    result = uvloop.run(run(args))
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
