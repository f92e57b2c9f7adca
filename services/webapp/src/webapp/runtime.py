"""What the web app holds while it runs: the session store, the sign-in, the called services.

:func:`running` is the lifespan's body: one ``AsyncExitStack`` opens the workload credential
(when the web app's own tokens come from Entra), the Redis client of the sessions, a resilient
client per called service (the fleet and notifications ones with the web app's own token), the
stream proxy and the sign-in, registers readiness (Redis and each called service's ``/healthz``)
and closes everything in reverse order.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any, TypedDict

from dronecommon import ServiceApp, redis_check
from dronecommon.auth.clients import create_redis_client
from dronecommon.auth.credentials import create_credential, credential_for
from dronecommon.httpclient import ResilientClient, create_http_client, create_probe_client

from .backends import Backends
from .entra import EntraSignIn
from .identity import DevSignIn, service_token_provider
from .ops import Throughput
from .sessions import SessionStore
from .settings import WebappSettings
from .streams import StreamProxy

logger = logging.getLogger("webapp.runtime")

CALLED = ("ingestion", "delivery", "workflow", "simulator", "notifier")
# The services whose data the web app reads with its own token.
OWN_TOKEN = ("simulator", "notifier")


class State(TypedDict):
    """The lifespan state: what the routes receive."""

    settings: WebappSettings
    sessions: SessionStore
    backends: Backends
    streams: StreamProxy
    dev_signin: DevSignIn | None
    entra: EntraSignIn | None
    throughput: Throughput


def service_url(settings: WebappSettings, service: str) -> str:
    url: str = getattr(settings, f"{service}_url")
    return url.rstrip("/")


def _health_check(probe: ResilientClient, url: str) -> Callable[[], Awaitable[None]]:
    async def check() -> None:
        response = await probe.get(url + "/healthz")
        if response.status_code != 200:
            raise RuntimeError(f"/healthz answered {response.status_code}")

    return check


def _session_secret(settings: WebappSettings) -> str:
    if settings.session.secret_key is not None:
        return settings.session.secret_key.get_secret_value()
    logger.warning(
        "WEBAPP_SESSION__SECRET_KEY is not set: cookies are signed with a key of this process "
        "(a restart signs everyone out; replicas do not share sessions)"
    )
    return secrets.token_urlsafe(32)


@asynccontextmanager
async def running(
    app: ServiceApp, settings: WebappSettings, *, entra_http_client: Any = None
) -> AsyncIterator[State]:
    async with AsyncExitStack() as stack:
        credential = await stack.enter_async_context(credential_for(redis=settings.redis))
        needs_entra_tokens = (
            any(settings.auth.outbound_scopes.get(name) for name in OWN_TOKEN)
            and not settings.auth.dev_signing_key_file
        )
        if credential is None and needs_entra_tokens:
            credential = create_credential()
            stack.push_async_callback(credential.close)
        redis = create_redis_client(settings.redis, credential)
        stack.push_async_callback(redis.aclose)

        dev_signin = (
            DevSignIn.from_settings(settings) if settings.signin.mode == "development" else None
        )
        entra = (
            EntraSignIn(settings.signin.entra, http_client=entra_http_client)
            if settings.signin.mode == "entra"
            else None
        )

        clients: dict[str, ResilientClient] = {}
        for name in CALLED:
            tokens = (
                service_token_provider(settings.auth, credential, name)
                if name in OWN_TOKEN
                else None
            )
            if tokens is not None:
                stack.push_async_callback(tokens.close)
            clients[name] = create_http_client(
                settings.http,
                base_url=service_url(settings, name),
                name=name,
                token_provider=tokens.token if tokens is not None else None,
            )
        backends = Backends(**clients)
        stack.push_async_callback(backends.aclose)
        streams = StreamProxy(settings.http, service_url(settings, "delivery"))
        stack.push_async_callback(streams.aclose)
        probe = create_probe_client(settings.downstream_health_timeout)
        stack.push_async_callback(probe.aclose)

        app.readiness.add("redis", redis_check(redis))
        for name in CALLED:
            app.readiness.add(
                name,
                _health_check(probe, service_url(settings, name)),
                timeout=settings.downstream_health_timeout + 0.5,
            )
        yield {
            "settings": settings,
            "sessions": SessionStore(redis, settings.session, _session_secret(settings)),
            "backends": backends,
            "streams": streams,
            "dev_signin": dev_signin,
            "entra": entra,
            "throughput": Throughput(redis, prefix=settings.session.key_prefix),
        }
