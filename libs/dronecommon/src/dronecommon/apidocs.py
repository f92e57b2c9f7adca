"""Swagger UI (``/docs``) and ReDoc (``/redoc``) served by the app itself, without a CDN.

FastAPI's own docs pages load their scripts, stylesheet, favicon and fonts from public CDNs, so
they stay blank on a machine or cluster without internet access. These routes serve the same
pages with every asset from the app: swagger-ui-dist and ReDoc's standalone bundle as shipped by
the ``fastapi-standalone-docs`` package (pinned in ``uv.lock``; only its files are used), FastAPI's
favicon, no web fonts and no online validator.

Assets live under the page's own path (``/docs/swagger-ui-bundle.js``, ``/redoc/logo-mini.svg``:
that package's ReDoc bundle asks for its logo next to the page) and honour the request's
``root_path``, so the pages also work behind a path-prefixing proxy. Like ``/openapi.json``,
the pages and assets need no token: they describe the API, they give no access to it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import fastapi_standalone_docs
from fastapi import FastAPI, Request, Response
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.responses import FileResponse, HTMLResponse

ASSET_ROOT = Path(fastapi_standalone_docs.__file__).resolve().parent / "static"
DOCS_URL = "/docs"
REDOC_URL = "/redoc"
# Browsers revalidate with the ETag after this long: the files change only with the package.
_CACHE_CONTROL = "public, max-age=3600"


@dataclass(frozen=True)
class Asset:
    """One file served with the docs pages."""

    file: Path
    media_type: str


SWAGGER_ASSETS = {
    "swagger-ui-bundle.js": Asset(ASSET_ROOT / "swagger/swagger-ui-bundle.js", "text/javascript"),
    "swagger-ui.css": Asset(ASSET_ROOT / "swagger/swagger-ui.css", "text/css"),
    "favicon.png": Asset(ASSET_ROOT / "fastapi/favicon.png", "image/png"),
}
REDOC_ASSETS = {
    "redoc.standalone.js": Asset(ASSET_ROOT / "redoc/redoc.standalone.js", "text/javascript"),
    "logo-mini.svg": Asset(ASSET_ROOT / "redoc/logo-mini.svg", "image/svg+xml"),
    "favicon.png": Asset(ASSET_ROOT / "fastapi/favicon.png", "image/png"),
}


def _root(request: Request) -> str:
    return str(request.scope.get("root_path", "")).rstrip("/")


def _asset_route(asset: Asset) -> Callable[[Request], Awaitable[Response]]:
    try:
        stat = asset.file.stat()
    except OSError as exc:  # the package moved its files: fail when the app is built
        raise RuntimeError(f"API docs asset missing: {asset.file}") from exc

    async def serve(request: Request) -> Response:
        response = FileResponse(
            asset.file,
            stat_result=stat,
            media_type=asset.media_type,
            headers={"Cache-Control": _CACHE_CONTROL},
        )
        etag = response.headers["etag"]
        if etag in request.headers.get("if-none-match", ""):
            headers = {"ETag": etag, "Cache-Control": _CACHE_CONTROL}
            return Response(status_code=304, headers=headers)
        return response

    return serve


def install_docs(app: FastAPI, *, docs_url: str = DOCS_URL, redoc_url: str = REDOC_URL) -> None:
    """Add the Swagger UI and ReDoc pages and their assets to ``app`` (built with
    ``docs_url=None, redoc_url=None`` so FastAPI's CDN-backed pages are off)."""
    openapi_url = app.openapi_url
    if not openapi_url:
        return

    async def swagger_ui(request: Request) -> HTMLResponse:
        root = _root(request)
        redirect = app.swagger_ui_oauth2_redirect_url
        return get_swagger_ui_html(
            openapi_url=root + openapi_url,
            title=f"{app.title} - Swagger UI",
            swagger_js_url=f"{root}{docs_url}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{docs_url}/swagger-ui.css",
            swagger_favicon_url=f"{root}{docs_url}/favicon.png",
            oauth2_redirect_url=root + redirect if redirect else None,
            init_oauth=app.swagger_ui_init_oauth,
            # No online validator badge: it would send the document's URL to a public service.
            swagger_ui_parameters={"validatorUrl": None, **(app.swagger_ui_parameters or {})},
        )

    async def redoc(request: Request) -> HTMLResponse:
        root = _root(request)
        return get_redoc_html(
            openapi_url=root + openapi_url,
            title=f"{app.title} - ReDoc",
            redoc_js_url=f"{root}{redoc_url}/redoc.standalone.js",
            redoc_favicon_url=f"{root}{redoc_url}/favicon.png",
            with_google_fonts=False,
        )

    async def oauth2_redirect(request: Request) -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    methods = ["GET", "HEAD"]
    app.add_route(docs_url, swagger_ui, methods=methods, include_in_schema=False)
    if app.swagger_ui_oauth2_redirect_url:
        app.add_route(
            app.swagger_ui_oauth2_redirect_url,
            oauth2_redirect,
            methods=methods,
            include_in_schema=False,
        )
    app.add_route(redoc_url, redoc, methods=methods, include_in_schema=False)
    for prefix, assets in ((docs_url, SWAGGER_ASSETS), (redoc_url, REDOC_ASSETS)):
        for name, asset in assets.items():
            app.add_route(
                f"{prefix}/{name}", _asset_route(asset), methods=methods, include_in_schema=False
            )
