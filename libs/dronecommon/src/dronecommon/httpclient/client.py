"""The resilient outbound HTTP client, on one ``aiohttp.ClientSession``.

One :class:`ResilientClient` per downstream service, created in the app's lifespan with
:func:`create_http_client` and closed with it. A call goes through these steps::

    build the Request (base_url + url, params, headers, body)           once per call
    ┌ budget left?                 no → TransientHTTPError("timeout")
    │ bearer token (if configured) fetched per attempt: a refreshed token is used on retries
    │ breaker.acquire()            refused → CircuitOpenError, nothing sent
    │ CLIENT span + traceparent    one span per attempt (OpenTelemetry HTTP semantic conventions:
    │                              a resend is a new span with ``http.request.resend_count``)
    │ a free connection            waits up to the connect timeout, else "pool" (no verdict)
    │ aiohttp exchange, body read  within the budget left (aiohttp's total timeout), the body
    │                              read whole up to ``max_response_body``
    │ outcome → breaker            transient failure / success / no verdict (pool, cancel);
    │                              429/503 with Retry-After is back-pressure, not a failure
    └ retry? idempotent, replayable, retryable failure, attempts left, and the wait fits the budget

No redirects are followed, no cookies kept, no proxy read from the environment; responses are read
whole before they are returned (:class:`~dronecommon.httpclient.Response`, no streaming).

The error classification (what raises, what returns) is in :mod:`dronecommon.httpclient.errors`;
when to retry and how long to wait in :mod:`dronecommon.httpclient.retry`; the breaker in
:mod:`dronecommon.httpclient.breaker`; the span of an attempt in
:mod:`dronecommon.httpclient.tracing`; the session, its limits and the body read in
:mod:`dronecommon.httpclient.session`.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Awaitable, Callable, Mapping
from types import TracebackType
from typing import Any, Self, TypedDict, Unpack

from multidict import CIMultiDict
from opentelemetry import trace
from yarl import URL

from dronecommon.httpclient.breaker import Admission, CircuitBreaker, CircuitState
from dronecommon.httpclient.errors import (
    CircuitOpenError,
    FailureKind,
    TransientHTTPError,
)
from dronecommon.httpclient.request import (
    QueryParams,
    Request,
    RequestContent,
    RequestHeaders,
    build_request,
)
from dronecommon.httpclient.response import Response
from dronecommon.httpclient.retry import (
    RETRYABLE_STATUSES,
    RetryPolicy,
    classify_transport_error,
    is_idempotent,
    is_transient_status,
    parse_retry_after,
)
from dronecommon.httpclient.session import Wire
from dronecommon.httpclient.tracing import traced_exchange
from dronecommon.httpclient.urls import UrlJoiner
from dronecommon.settings import HttpClientSettings

logger = logging.getLogger(__name__)

TokenProvider = Callable[[], Awaitable[str]]


class RequestOptions(TypedDict, total=False):
    """Keyword arguments of every call."""

    params: QueryParams | None
    headers: RequestHeaders | None
    timeout: float | None
    idempotent: bool | None
    budget: float | None


class BodyOptions(RequestOptions, total=False):
    """Keyword arguments of the calls that carry a body (PUT, POST, PATCH)."""

    content: RequestContent | None
    json: Any


_TRACER_NAME = "dronecommon.httpclient"


class ResilientClient:
    """An async HTTP client with timeouts, retries, a breaker per host, tracing and a bearer token.

    ``get/head/options/delete/put/post/patch/request`` return a :class:`Response`; ``aclose()``;
    ``async with``. Two keyword arguments besides the usual ones: ``idempotent`` (override whether
    the call may be retried) and ``budget`` (seconds the whole call, retries and waits included,
    may take). ``traced=False`` makes no spans (and so sends no ``traceparent``).
    """

    def __init__(
        self,
        settings: HttpClientSettings,
        *,
        name: str,
        base_url: str = "",
        budget: float | None = None,
        token_provider: TokenProvider | None = None,
        headers: Mapping[str, str] | None = None,
        traced: bool = True,
    ) -> None:
        self.name = name
        self._urls = UrlJoiner(base_url) if base_url else None
        self.base_url = self._urls.base if self._urls is not None else URL()
        self._settings = settings
        self._retry = RetryPolicy(
            retries=settings.retries,
            backoff_base=settings.backoff_base,
            backoff_max=settings.backoff_max,
            retry_after_max=settings.retry_after_max,
        )
        if budget is None:
            budget = settings.connect_timeout + settings.read_timeout + settings.retry_after_max
        self._budget = budget
        self._breakers: dict[tuple[str, str, int | None], CircuitBreaker] = {}
        self._token_provider = token_provider
        self._headers: CIMultiDict[str] | None = CIMultiDict(headers) if headers else None
        self._tracer = trace.get_tracer(_TRACER_NAME) if traced else trace.NoOpTracer()
        self._wire = Wire(settings)
        self._closed = False

    # -- the calls -------------------------------------------------------------------------------

    async def get(self, url: str | URL, **options: Unpack[RequestOptions]) -> Response:
        """Send a GET (retried on transient failures)."""
        return await self.request("GET", url, **options)

    async def head(self, url: str | URL, **options: Unpack[RequestOptions]) -> Response:
        """Send a HEAD (retried on transient failures)."""
        return await self.request("HEAD", url, **options)

    async def options(self, url: str | URL, **options: Unpack[RequestOptions]) -> Response:
        """Send an OPTIONS (retried on transient failures)."""
        return await self.request("OPTIONS", url, **options)

    async def delete(self, url: str | URL, **options: Unpack[RequestOptions]) -> Response:
        """Send a DELETE (retried on transient failures)."""
        return await self.request("DELETE", url, **options)

    async def put(self, url: str | URL, **options: Unpack[BodyOptions]) -> Response:
        """Send a PUT (retried on transient failures)."""
        return await self.request("PUT", url, **options)

    async def post(self, url: str | URL, **options: Unpack[BodyOptions]) -> Response:
        """Send a POST (retried only with an ``Idempotency-Key`` header or ``idempotent=True``)."""
        return await self.request("POST", url, **options)

    async def patch(self, url: str | URL, **options: Unpack[BodyOptions]) -> Response:
        """Send a PATCH (retried only with an ``Idempotency-Key`` header or ``idempotent=True``)."""
        return await self.request("PATCH", url, **options)

    def build_request(
        self,
        method: str,
        url: str | URL,
        *,
        content: RequestContent | None = None,
        json: Any = None,
        params: QueryParams | None = None,
        headers: RequestHeaders | None = None,
    ) -> Request:
        """The :class:`Request` a call would send (``url`` relative to ``base_url``)."""
        return build_request(
            method,
            self._join(url),
            defaults=self._headers,
            headers=headers,
            params=params,
            content=content,
            json=json,
        )

    async def request(
        self,
        method: str,
        url: str | URL,
        *,
        content: RequestContent | None = None,
        json: Any = None,
        params: QueryParams | None = None,
        headers: RequestHeaders | None = None,
        timeout: float | None = None,  # noqa: ASYNC109 - per call, within the budget
        idempotent: bool | None = None,
        budget: float | None = None,
    ) -> Response:
        """Send a request; return its response unless it failed transiently.

        Raises :class:`TransientHTTPError` (:class:`CircuitOpenError` when failing fast) for
        timeouts, connection failures, malformed or oversized responses, 5xx, 408 and 429 once
        retries are exhausted or not allowed. ``timeout`` replaces both the connect and the read
        timeout for this call.
        """
        request = self.build_request(
            method, url, content=content, json=json, params=params, headers=headers
        )
        return await self.send(request, timeout=timeout, idempotent=idempotent, budget=budget)

    async def send(
        self,
        request: Request,
        *,
        timeout: float | None = None,  # noqa: ASYNC109 - per call, within the budget
        idempotent: bool | None = None,
        budget: float | None = None,
    ) -> Response:
        """Send a built request with the client's retries, breaker, tracing and token."""
        if self._closed:
            raise RuntimeError(f"the {self.name} HTTP client is closed")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + (self._budget if budget is None else budget)
        connect = self._settings.connect_timeout if timeout is None else timeout
        read = self._settings.read_timeout if timeout is None else timeout
        policy = self._retry
        headers = request.headers
        retryable = (
            policy.retries > 0
            and request.replayable
            and is_idempotent(request.method, headers, idempotent)
        )
        breaker = self._breaker_for(request.url)
        token_provider = self._token_provider
        if token_provider is not None and "Authorization" in headers:
            token_provider = None  # the caller's own credentials win
        attempt = 0
        failure: TransientHTTPError | None = None
        while True:
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise self._failure(request, "timeout", attempt, "the call's budget is spent")
            if token_provider is not None:
                headers["Authorization"] = "Bearer " + await token_provider()
            admission = breaker.acquire()
            if admission is Admission.REFUSED:
                raise CircuitOpenError(
                    f"{request.method} {request.url}: circuit open for {breaker.name}",
                    method=request.method,
                    url=str(request.url),
                    kind="circuit_open",
                    attempts=attempt,
                    retry_after=breaker.retry_after,
                ) from failure
            try:
                response = await traced_exchange(
                    self._tracer, self.name, self._wire, request, attempt, deadline, connect, read
                )
            except Exception as exc:
                kind = classify_transport_error(exc)
                if kind is None:
                    breaker.release(admission)
                    raise
                if kind == "pool":
                    breaker.release(admission)  # our own pool is full: no verdict on the target
                else:
                    breaker.record_failure(admission)
                failure = self._failure(request, kind, attempt + 1, repr(exc))
                failure.__cause__ = exc
                if kind == "protocol":
                    raise failure from exc  # the same request would get the same answer
            except BaseException:
                breaker.release(admission)  # cancelled: no verdict on the target
                raise
            else:
                status = response.status_code
                if not is_transient_status(status):
                    breaker.record_success(admission)
                    return response
                if status in (429, 503) and "Retry-After" in response.headers:
                    # Deliberate back-pressure ("no drone free, retry in 30 s") from a target
                    # that is up and answering: retry later, but do not break the circuit —
                    # other calls to it (releases, reads) must still go through.
                    breaker.record_success(admission)
                else:
                    breaker.record_failure(admission)
                failure = self._failure(
                    request, "status", attempt + 1, f"{status} {response.reason_phrase}", response
                )
                if status not in RETRYABLE_STATUSES:
                    raise failure
            if not retryable or attempt >= policy.retries:
                raise failure
            delay = policy.delay(attempt, failure.retry_after)
            if loop.time() + delay >= deadline:
                logger.debug("%s: no budget left to retry %s", self.name, request.url)
                raise failure
            logger.debug(
                "%s: retrying %s %s in %.3fs after %s",
                self.name,
                request.method,
                request.url,
                delay,
                failure.kind,
            )
            await asyncio.sleep(delay)
            attempt += 1

    def circuit_state(self, url: str | URL = "") -> CircuitState:
        """The breaker state of the host ``url`` (relative to ``base_url``) points at."""
        return self._breaker_for(self._join(url)).state

    async def aclose(self) -> None:
        """Close the connection pool (idempotent)."""
        if not self._closed:
            self._closed = True
            await self._wire.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    # -- helpers ----------------------------------------------------------------------------------

    def _failure(
        self,
        request: Request,
        kind: FailureKind,
        attempts: int,
        why: str,
        response: Response | None = None,
    ) -> TransientHTTPError:
        retry_after = None
        if response is not None:
            retry_after = parse_retry_after(response.headers.get("Retry-After"))
        return TransientHTTPError(
            f"{request.method} {request.url} failed ({kind}): {why}",
            method=request.method,
            url=str(request.url),
            kind=kind,
            attempts=attempts,
            retry_after=retry_after,
            response=response,
        )

    def _join(self, url: str | URL) -> URL:
        if self._urls is None:
            return url if isinstance(url, URL) else URL(url)
        return self._urls.join(url)

    def _breaker_for(self, url: URL) -> CircuitBreaker:
        key = (url.scheme, url.raw_host or "", url.port)
        breaker = self._breakers.get(key)
        if breaker is None:
            breaker = CircuitBreaker(
                f"{self.name} ({url.scheme}://{url.raw_authority})",
                failure_threshold=self._settings.breaker_failure_threshold,
                reset_timeout=self._settings.breaker_reset_timeout,
            )
            self._breakers[key] = breaker
        return breaker


def create_http_client(
    settings: HttpClientSettings,
    *,
    base_url: str,
    name: str,
    token_provider: TokenProvider | None = None,
    budget: float | None = None,
    headers: Mapping[str, str] | None = None,
) -> ResilientClient:
    """A :class:`ResilientClient` for one downstream service, configured from ``settings``.

    ``budget`` bounds a whole call, retries and waits included; it defaults to
    ``connect_timeout + read_timeout + retry_after_max`` (one full attempt plus the longest wait the
    client honours).
    """
    return ResilientClient(
        settings,
        name=name,
        base_url=base_url,
        budget=budget,
        token_provider=token_provider,
        headers=headers,
    )


def create_probe_client(timeout: float, *, name: str = "health probe") -> ResilientClient:
    """A client for health probes of other services (``/healthz``), absolute URLs.

    Probe-shaped: one attempt within ``timeout`` (no retries), a circuit breaker that never opens
    (a probe reports the target's state now, not a remembered one; its failures are its own, not
    counted against the clients that carry the service's calls) and no spans (health routes stay
    out of traces, as on the serving side).
    """
    settings = HttpClientSettings(
        connect_timeout=timeout,
        read_timeout=timeout,
        retries=0,
        retry_after_max=0,
        breaker_failure_threshold=sys.maxsize,
        max_connections=10,
    )
    return ResilientClient(settings, name=name, budget=timeout, traced=False)
