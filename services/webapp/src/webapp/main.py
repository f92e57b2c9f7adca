"""The web app: ``create_app(settings)`` (no I/O until the lifespan runs).

Server-rendered pages for customers and operators, a backend-for-frontend for the services
behind them. What each part does: :mod:`webapp.pages` (schedule, my deliveries, track one),
:mod:`webapp.public` (``/track/{id}``), :mod:`webapp.operators` (``/ops``), :mod:`webapp.signin`,
:mod:`webapp.sessions` (cookie and Redis), :mod:`webapp.security` (headers, CSP),
:mod:`webapp.streams` (the tracking streams passed through).
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from starlette.responses import RedirectResponse, Response
from starlette.staticfiles import StaticFiles

from dronecommon import DomainError, create_service_app, load_settings
from dronecommon.problems import problem_response

from . import actions, operators, pages, public, signin
from .errors import SignInRequired
from .runtime import running
from .security import EdgeGuardMiddleware, SecurityHeadersMiddleware, content_security_policy
from .sessions import SessionMiddleware
from .settings import WebappSettings
from .web import STATIC_DIR, render, signin_redirect

# Routes the pages' scripts call: they answer problem+json, never HTML or a redirect.
SCRIPT_SUFFIXES = (".json", "/events")


def _for_script(request: Request) -> bool:
    return request.url.path.endswith(SCRIPT_SUFFIXES) or "text/html" not in request.headers.get(
        "accept", ""
    )


async def _page_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, DomainError)
    if _for_script(request):
        return problem_response(
            request.scope,
            exc.status,
            exc.detail,
            title=exc.title,
            type_=exc.type,
            headers=exc.headers,
        )
    if isinstance(exc, SignInRequired):
        return signin_redirect(request)
    titles = {403: "Not allowed", 404: "Not found", 503: "Temporarily unavailable"}
    response = render(
        request,
        "error.html",
        {"title": titles.get(exc.status, "Something went wrong"), "detail": exc.detail},
        status=exc.status,
    )
    response.headers.update(exc.headers)
    return response


def create_app(
    settings: WebappSettings | None = None,
    *,
    configure_logs: bool = True,
    entra_http_client: Any = None,
) -> FastAPI:
    """The web app. ``entra_http_client`` stands in for Entra's endpoints in tests (MSAL's own
    HTTP client hook)."""
    settings = settings or load_settings(WebappSettings)
    app = create_service_app(
        settings,
        title="webapp",
        description="The customer web app of Fabrikam Drone Delivery (pages, not an API).",
        public_routers=[
            signin.router,
            pages.router,
            actions.router,
            public.router,
            operators.router,
        ],
        lifespan=lambda app: running(app, settings, entra_http_client=entra_http_client),
        configure_logs=configure_logs,
        json_bodies=False,
    )
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    app.add_exception_handler(DomainError, _page_error)
    app.add_middleware(
        SessionMiddleware, cookie_name=settings.session.cookie_name, secure=settings.session.secure
    )
    app.add_middleware(SecurityHeadersMiddleware, policy=content_security_policy(settings))
    app.add_middleware(EdgeGuardMiddleware)

    @app.get("/favicon.ico", include_in_schema=False)
    async def favicon() -> Response:
        return RedirectResponse("/static/img/drone.svg", status_code=308)

    return app
