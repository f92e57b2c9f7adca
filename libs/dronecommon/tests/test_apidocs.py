"""Swagger UI and ReDoc: served by the app with local assets, public when auth is on."""

from __future__ import annotations

from typing import ClassVar

import httpx
import pytest
from fastapi import APIRouter, FastAPI
from pydantic import Field

from dronecommon import ServiceSettings, create_service_app
from dronecommon.apidocs import REDOC_ASSETS, SWAGGER_ASSETS
from dronecommon.settings import AuthSettings
from dronetesting.apps import app_client
from dronetesting.docs import assert_docs_page_offline, asset_urls
from dronetesting.tokens import LocalIssuer


class DocsSettings(ServiceSettings):
    service_name: ClassVar[str] = "docs-example"
    # Tokens are not this file's subject (see test_auth*.py): switched off explicitly.
    auth: AuthSettings = Field(default_factory=lambda: AuthSettings(enabled=False))


def make_app(settings: ServiceSettings | None = None) -> FastAPI:
    router = APIRouter()

    @router.get("/api/things/{thing_id}")
    async def thing(thing_id: str) -> dict[str, str]:
        return {"id": thing_id}

    return create_service_app(
        settings or DocsSettings(),
        title="Example service",
        routers=[router],
        configure_logs=False,
    )


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
async def test_docs_pages_load_every_asset_from_the_app(page: str) -> None:
    async with app_client(make_app()) as client:
        urls = await assert_docs_page_offline(client, page)
        assert (await client.get("/openapi.json")).status_code == 200
    assets = SWAGGER_ASSETS if page == "/docs" else REDOC_ASSETS
    # The page's own assets, and the bundle's (ReDoc's logo) are all served.
    assert {f"{page}/{name}" for name in assets} >= set(urls)


async def test_fastapis_cdn_pages_are_replaced() -> None:
    async with app_client(make_app()) as client:
        swagger = (await client.get("/docs")).text
        redoc = (await client.get("/redoc")).text
        logo = await client.get("/redoc/logo-mini.svg")
    assert "cdn.jsdelivr.net" not in swagger + redoc
    assert "fonts.googleapis.com" not in redoc
    assert '"validatorUrl": null' in swagger  # no call to the public online validator
    assert logo.status_code == 200
    assert logo.headers["content-type"] == "image/svg+xml"
    # The bundled ReDoc asks for its logo beside the page, not on its vendor's CDN.
    bundle = REDOC_ASSETS["redoc.standalone.js"].file.read_text(encoding="utf-8")
    assert "cdn.redoc.ly" not in bundle


async def test_docs_and_openapi_stay_public_when_auth_is_on(dev_issuer: LocalIssuer) -> None:
    app = make_app(DocsSettings(auth=dev_issuer.settings))
    async with app_client(app) as client:
        for page in ("/docs", "/redoc"):
            await assert_docs_page_offline(client, page)
        document = await client.get("/openapi.json")
        redirect = await client.get("/docs/oauth2-redirect")
        anonymous = await client.get("/api/things/1")
        signed = await client.get("/api/things/1", headers=dev_issuer.headers())
    assert document.status_code == 200
    assert "/api/things/{thing_id}" in document.json()["paths"]
    assert redirect.status_code == 200
    assert anonymous.status_code == 401
    assert anonymous.headers["content-type"] == "application/problem+json"
    assert signed.status_code == 200


async def test_docs_honour_the_root_path_of_a_prefixing_proxy() -> None:
    transport = httpx.ASGITransport(app=make_app(), root_path="/example")
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        page = await client.get("/example/docs")
        urls = await assert_docs_page_offline(client, "/example/redoc")
    assert "url: '/example/openapi.json'" in page.text
    assert all(url.startswith("/example/docs/") for url in asset_urls(page.text))
    assert all(url.startswith("/example/redoc/") for url in urls)


async def test_assets_are_cacheable_and_revalidated() -> None:
    async with app_client(make_app()) as client:
        first = await client.get("/docs/swagger-ui-bundle.js")
        again = await client.get(
            "/docs/swagger-ui-bundle.js", headers={"If-None-Match": first.headers["etag"]}
        )
        head = await client.head("/redoc/redoc.standalone.js")
        stale = await client.get("/docs/swagger-ui.css", headers={"If-None-Match": '"other"'})
    assert first.status_code == 200
    assert first.headers["cache-control"].startswith("public")
    assert again.status_code == 304
    assert again.content == b""
    assert head.status_code == 200
    assert int(head.headers["content-length"]) > 100_000
    assert head.content == b""
    assert stale.status_code == 200


async def test_only_the_listed_assets_are_served() -> None:
    async with app_client(make_app()) as client:
        missing = await client.get("/docs/LICENSE")
        traversal = await client.get("/docs/..%2Fredoc%2Fredoc.standalone.js")
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"
    assert traversal.status_code == 404
