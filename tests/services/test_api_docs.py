"""Every service serves Swagger UI and ReDoc with its own assets: no CDN, no other host."""

from __future__ import annotations

import importlib

import httpx
import pytest
from fastapi import FastAPI

from dronetesting.docs import assert_docs_page_offline

SERVICES = (
    "ingestion",
    "delivery",
    "package",
    "dronescheduler",
    "workflow",
    "simulator",
    "notifier",
)


def service_app(service: str, monkeypatch: pytest.MonkeyPatch) -> FastAPI:
    # Tokens on, as deployed: the docs stay public (no token is ever read for them, so the
    # issuer's keys need not exist).
    prefix = f"{service.upper()}_AUTH__"
    monkeypatch.setenv(prefix + "ENABLED", "true")
    monkeypatch.setenv(prefix + "ISSUER", "http://localhost/dev-issuer")
    monkeypatch.setenv(prefix + "PUBLIC_AUDIENCE", "dronedelivery-api")
    monkeypatch.setenv(prefix + "JWKS_FILE", "/nonexistent/jwks.json")
    main = importlib.import_module(f"{service}.main")
    app = main.create_app(configure_logs=False)
    assert isinstance(app, FastAPI)
    return app


@pytest.mark.parametrize("service", SERVICES)
async def test_docs_pages_use_only_the_services_own_assets(
    service: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The docs need none of the service's stores, so no lifespan runs here.
    transport = httpx.ASGITransport(app=service_app(service, monkeypatch))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        swagger = await assert_docs_page_offline(client, "/docs")
        redoc = await assert_docs_page_offline(client, "/redoc")
        document = await client.get("/openapi.json")
    assert "/docs/swagger-ui-bundle.js" in swagger
    assert "/redoc/redoc.standalone.js" in redoc
    assert document.status_code == 200
    assert document.json()["openapi"].startswith("3.")
    if service != "workflow":  # the workflow has only health routes
        assert document.json()["components"]["securitySchemes"]["HTTPBearer"]
