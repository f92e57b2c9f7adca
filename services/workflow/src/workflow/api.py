"""The workflow's one route: the queue as operators see it (``GET /api/queue``).

An operator's own token (a customer token holding the ``Operator`` user role; the web app's
``/ops`` page forwards it) reads it; any other customer is 403, and a service token cannot reach
it (the workflow has no API audience of its own). The route is internal: through the public
gateway it answers 404 (:mod:`dronecommon.edge`). With tokens off anyone reads it.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from dronecommon import error_responses, from_state
from dronecommon.auth.inbound import Caller
from dronecommon.auth.policy import requires

from .errors import OperatorRequired
from .queueview import QueueSnapshot, QueueView
from .runtime import State

Queue = Annotated[QueueView, from_state(State, "queue_view")]
Customer = Annotated[Caller, requires(customers=True)]

router = APIRouter(prefix="/api", tags=["operations"])


@router.get(
    "/queue",
    summary="The queue now: depth, messages in hand, dead letters (the oldest), total added",
    description="For operators (a customer token holding the `Operator` role). `enqueuedTotal` "
    "only grows: its change over time is the queue's throughput. With Azure Service Bus the "
    "depth and totals are Azure Monitor metrics, so they are null here.",
    responses=error_responses(400, 403, 503),
)
async def queue(
    view: Queue, caller: Customer, limit: Annotated[int, Query(ge=0, le=1000)] = 20
) -> QueueSnapshot:
    if caller.kind == "customer" and not caller.operator:
        raise OperatorRequired("The queue view is for operators (the Operator role).")
    return await view.snapshot(limit)
