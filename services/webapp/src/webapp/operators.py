"""``/ops``: the operators' page (the Operator role): fleet, active deliveries, queue, throughput.

The fleet comes from the simulator's control API (``GET /api/fleet``, the web app's own token
with ``Fleet.Control``): every drone in the air with its phase, when the phase ends by the
drone's flight plan, place, speed and battery; the deliveries they fly are the active ones. The
queue (depth, messages being processed, dead letters and the oldest of them) from the workflow's
queue view (``GET /api/queue``, the operator's own token). Throughput: see :mod:`webapp.ops`. A
source that cannot answer leaves its part of the page saying so; the rest still shows.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import JSONResponse, Response

from dronecommon.domain import format_utc, utcnow

from .backends import Backends, Reply
from .errors import OperatorsOnly, ServiceUnavailable
from .maps import map_config
from .ops import Throughput
from .web import Customer, Rates, Services, Settings, SignedIn, render

router = APIRouter(include_in_schema=False)

PHASES = ("ToPickup", "AtPickup", "ToDropoff", "AtDropoff", "Returning")


async def _try(call: Any) -> Reply | str:
    try:
        reply: Reply = await call
    except ServiceUnavailable as exc:
        return exc.detail
    return reply


def _fleet(reply: Reply | str) -> dict[str, Any]:
    if isinstance(reply, str) or not reply.ok or not isinstance(reply.body, dict):
        why = reply if isinstance(reply, str) else f"the simulator answered {reply.status}"
        return {"error": why, "drones": [], "byPhase": {}, "inFlight": 0}
    body = reply.body
    drones = [
        {
            "droneId": d.get("droneId"),
            "deliveryId": d.get("deliveryId"),
            "phase": d.get("phase"),
            "at": [d["location"]["latitude"], d["location"]["longitude"]],
            "speedMph": d.get("speedMph"),
            "batteryPct": d.get("batteryPct"),
            "phaseEndsAt": d.get("phaseEndsAt"),
        }
        for d in body.get("drones", [])
        if isinstance(d, dict) and isinstance(d.get("location"), dict)
    ]
    return {
        "error": None,
        "drones": drones,
        "byPhase": {phase: body.get("byPhase", {}).get(phase, 0) for phase in PHASES},
        "inFlight": body.get("inFlight", len(drones)),
    }


async def _queue(reply: Reply | str, throughput: Throughput) -> dict[str, Any]:
    if isinstance(reply, str) or not reply.ok or not isinstance(reply.body, dict):
        why = reply if isinstance(reply, str) else f"the workflow answered {reply.status}"
        return {"error": why}
    body = dict(reply.body)
    total = body.get("enqueuedTotal")
    if isinstance(total, int):
        measured = await throughput.record(total)
        body["throughput"] = {
            "perMinute": measured.per_minute,
            "overSeconds": round(measured.over_seconds, 1),
            "series": [[format_utc_seconds(t), round(r, 1)] for t, r in measured.series],
        }
    else:
        body["throughput"] = None
    body["error"] = None
    return body


def format_utc_seconds(seconds: float) -> str:
    return format_utc(dt.datetime.fromtimestamp(seconds, dt.UTC))


async def ops_data(
    services: Backends, customer: SignedIn, throughput: Throughput
) -> dict[str, Any]:
    if not customer.operator:
        raise OperatorsOnly("This page is for operators (the Operator role).")
    fleet_reply, queue_reply = await asyncio.gather(
        _try(services.fleet()), _try(services.queue(customer.token))
    )
    return {
        "fleet": _fleet(fleet_reply),
        "queue": await _queue(queue_reply, throughput),
        "now": format_utc(utcnow()),
    }


@router.get("/ops")
async def ops_page(
    request: Request,
    customer: Customer,
    services: Services,
    settings: Settings,
    throughput: Rates,
) -> Response:
    data = await ops_data(services, customer, throughput)
    return render(
        request,
        "ops.html",
        {"data": data, "phases": PHASES, "page_data": {**map_config(settings), **data}},
    )


@router.get("/ops.json")
async def ops_json(customer: Customer, services: Services, throughput: Rates) -> Response:
    data = await ops_data(services, customer, throughput)
    return JSONResponse(data, headers={"Cache-Control": "no-store"})
