"""The edge marker: routes the public gateway must never reach answer 404 to it.

The gateways (Caddy locally, Application Gateway for Containers in AKS) set the request header
:data:`EDGE_HEADER` on every request they forward, replacing any value a client sent. Routers a
service registers as internal (``create_service_app(internal_routers=...)``) answer a request
that carries it with the 404 of an unknown route, before anything else (tokens included): a
path the gateway's routes let through by prefix (``/api/deliveries/{id}/owner`` under
``/api/deliveries``) is still not part of the public API. Calls inside the cluster or the compose
network (the workflow, the simulator) do not pass a gateway and carry no marker.
"""

from __future__ import annotations

from fastapi import Depends, HTTPException, Request
from fastapi.params import Depends as DependsParam

EDGE_HEADER = "Dronedelivery-Edge"


async def not_at_edge(request: Request) -> None:
    """404 when the request came through the public gateway."""
    if EDGE_HEADER in request.headers:
        raise HTTPException(404, detail="No such route.")


NOT_AT_EDGE: DependsParam = Depends(not_at_edge)
