"""The edge marker: internal routers answer 404, first of all, to what a gateway forwards."""

from __future__ import annotations

from fastapi import APIRouter

from dronecommon import create_service_app
from dronecommon.edge import EDGE_HEADER
from dronecommon.settings import ServiceSettings
from dronetesting.apps import app_client
from dronetesting.tokens import LocalIssuer


class EdgeSettings(ServiceSettings):
    pass


async def test_internal_routes_do_not_exist_at_the_edge(dev_issuer: LocalIssuer) -> None:
    internal, owned = APIRouter(), APIRouter()

    @internal.get("/things/{id}/secret")
    async def secret(id: str) -> dict[str, str]:
        return {"id": id}

    @owned.get("/things/{id}")
    async def thing(id: str) -> dict[str, str]:
        return {"id": id}

    app = create_service_app(
        EdgeSettings(auth=dev_issuer.settings, log_json=False),
        title="edge",
        routers=[owned],
        internal_routers=[internal],
        configure_logs=False,
    )
    edge = {EDGE_HEADER: "public"}
    async with app_client(app) as http:
        # Through the gateway: 404 whatever the token, even none (not 401).
        for headers in (edge, edge | dev_issuer.headers()):
            hidden = await http.get("/things/1/secret", headers=headers)
            assert hidden.status_code == 404
            assert hidden.headers["content-type"] == "application/problem+json"
        assert (await http.get("/things/1", headers=edge | dev_issuer.headers())).status_code == 200
        # Inside: the route is there, behind its token.
        assert (await http.get("/things/1/secret")).status_code == 401
        inside = await http.get("/things/1/secret", headers=dev_issuer.headers())
        assert inside.status_code == 200
