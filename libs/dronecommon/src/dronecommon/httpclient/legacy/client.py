"""The resilient outbound HTTP client: httpx's API shape over a fast transport.

One :class:`ResilientClient` per downstream service, created in the app's lifespan with
:func:`create_http_client` and closed with it. A call goes through these steps::

    build the httpx.Request (base_url + url, params, headers, body)      once per call
    ┌ budget left?                 no → TransientHTTPError("timeout")
    │ bearer token (if configured) fetched per attempt: a refreshed token is used on retries
    │ breaker.acquire()            refused → CircuitOpenError, nothing sent
    │ CLIENT span + traceparent    one span per attempt (OpenTelemetry HTTP semantic conventions:
    │                              a resend is a new span with ``http.request.resend_count``)
    │ transport call + body read   connect/read timeouts clipped to the budget left
    │ outcome → breaker            transient failure / success / no verdict (pool timeout, cancel);
    │                              429/503 with Retry-After is back-pressure, not a failure
    └ retry? idempotent, replayable, retryable failure, attempts left, and the wait fits the budget

Requests go straight to the transport (``httpx.AsyncBaseTransport.handle_async_request``) instead
of through ``httpx.AsyncClient.send``: that layer cost about a third of the throughput on the
benchmark machine and brings nothing a service-to-service call wants. So: no redirects are
followed, no cookies kept, no proxy read from the environment, no ``auth=`` flows (the bearer token
is set here); responses are read whole before they are returned (no streaming) and carry
``elapsed``. A relative ``url`` is appended to ``base_url``'s path as httpx does, except that a
string is joined as text (``"//x"`` is a path here, not a host); see :mod:`.urls` for why.

Spans are made here, not by opentelemetry-instrumentation-httpx/-aiohttp-client: the transport
runs with HTTP instrumentation suppressed (the context key ``suppress_http_instrumentation()``
sets), so a process that also instruments httpx or aiohttp globally still gets exactly one CLIENT
span per attempt. Span attributes: ``http.request.method``, ``url.full``, ``server.address``,
``server.port``, ``peer.service`` (the client's name), ``http.response.status_code``,
``error.type`` (the status code from 400 up, or the exception class).

The error classification (what raises, what returns) is in :mod:`dronecommon.httpclient.errors`;
when to retry and how long to wait is in :mod:`dronecommon.httpclient.retry`; the breaker is in
:mod:`dronecommon.httpclient.breaker`; the transports in :mod:`dronecommon.httpclient.transport`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from datetime import timedelta
from json import dumps as json_dumps
from time import perf_counter
from types import TracebackType
from typing import Any, Self, TypedDict, Unpack

import httpx
from httpx._client import UseClientDefault
from httpx._types import (
    HeaderTypes,
    QueryParamTypes,
    RequestContent,
    RequestData,
    RequestFiles,
)
from opentelemetry import context, trace

# The key opentelemetry-instrumentation's suppress_http_instrumentation() sets, set here directly
# to save a generator-based context manager per request.
from opentelemetry.context import _SUPPRESS_HTTP_INSTRUMENTATION_KEY
from opentelemetry.trace import SpanKind, Status, StatusCode

from dronecommon.httpclient.breaker import Admission, CircuitBreaker, CircuitState
from dronecommon.httpclient.errors import CircuitOpenError, FailureKind, TransientHTTPError
from dronecommon.httpclient.legacy.retry import (
    RETRYABLE_STATUSES,
    RetryPolicy,
    classify_transport_error,
    is_idempotent,
    is_replayable,
    is_transient_status,
    parse_retry_after,
)
from dronecommon.httpclient.legacy.transport import TransportKind, build_transport
from dronecommon.httpclient.legacy.urls import UrlJoiner
from dronecommon.propagation import inject_trace_context
from dronecommon.settings import HttpClientSettings

logger = logging.getLogger(__name__)

TokenProvider = Callable[[], Awaitable[str]]
TimeoutArg = float | httpx.Timeout | UseClientDefault


class RequestOptions(TypedDict, total=False):
    """Keyword arguments of every call (as in ``httpx.AsyncClient``, plus the last two)."""

    params: QueryParamTypes | None
    headers: HeaderTypes | None
    timeout: TimeoutArg
    idempotent: bool | None
    budget: float | None


class BodyOptions(RequestOptions, total=False):
    """Keyword arguments of the calls that carry a body (PUT, POST, PATCH)."""

    content: RequestContent | None
    data: RequestData | None
    files: RequestFiles | None
    json: Any


_TRACER_NAME = "dronecommon.httpclient"
_DEFAULT_PORTS = {"http": 80, "https": 443}


class ResilientClient:
    """An async HTTP client with timeouts, retries, a breaker per host, tracing and a bearer token.

    The methods mirror ``httpx.AsyncClient`` (``get/head/options/delete/put/post/patch/request``
    return an ``httpx.Response``; ``aclose()``; ``async with``), plus two keyword arguments:
    ``idempotent`` (override whether the call may be retried) and ``budget`` (seconds the whole
    call, retries and waits included, may take).
    """

    def __init__(
        self,
        transport: httpx.AsyncBaseTransport,
        *,
        name: str,
        base_url: str | httpx.URL = "",
        timeout: httpx.Timeout,
        retry: RetryPolicy,
        budget: float,
        breaker_failure_threshold: int,
        breaker_reset_timeout: float,
        token_provider: TokenProvider | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.name = name
        self._urls = UrlJoiner(httpx.URL(base_url)) if base_url else None
        self.base_url = self._urls.base if self._urls is not None else httpx.URL()
        self._transport = transport
        self._timeout = timeout
        self._retry = retry
        self._budget = budget
        self._breaker_threshold = breaker_failure_threshold
        self._breaker_reset = breaker_reset_timeout
        self._breakers: dict[bytes, CircuitBreaker] = {}
        self._token_provider = token_provider
        self._headers = httpx.Headers(headers) if headers else None
        self._tracer = trace.get_tracer(_TRACER_NAME)
        self._closed = False

    # -- httpx-shaped API ---------------------------------------------------------------------

    async def get(self, url: httpx.URL | str, **options: Unpack[RequestOptions]) -> httpx.Response:
        """Send a GET (retried on transient failures)."""
        return await self.request("GET", url, **options)

    async def head(self, url: httpx.URL | str, **options: Unpack[RequestOptions]) -> httpx.Response:
        """Send a HEAD (retried on transient failures)."""
        return await self.request("HEAD", url, **options)

    async def options(
        self, url: httpx.URL | str, **options: Unpack[RequestOptions]
    ) -> httpx.Response:
        """Send an OPTIONS (retried on transient failures)."""
        return await self.request("OPTIONS", url, **options)

    async def delete(
        self, url: httpx.URL | str, **options: Unpack[RequestOptions]
    ) -> httpx.Response:
        """Send a DELETE (retried on transient failures)."""
        return await self.request("DELETE", url, **options)

    async def put(self, url: httpx.URL | str, **options: Unpack[BodyOptions]) -> httpx.Response:
        """Send a PUT (retried on transient failures)."""
        return await self.request("PUT", url, **options)

    async def post(self, url: httpx.URL | str, **options: Unpack[BodyOptions]) -> httpx.Response:
        """Send a POST (retried only with an ``Idempotency-Key`` header or ``idempotent=True``)."""
        return await self.request("POST", url, **options)

    async def patch(self, url: httpx.URL | str, **options: Unpack[BodyOptions]) -> httpx.Response:
        """Send a PATCH (retried only with an ``Idempotency-Key`` header or ``idempotent=True``)."""
        return await self.request("PATCH", url, **options)

    def build_request(
        self,
        method: str,
        url: httpx.URL | str,
        *,
        content: RequestContent | None = None,
        data: RequestData | None = None,
        files: RequestFiles | None = None,
        json: Any | None = None,
        params: QueryParamTypes | None = None,
        headers: HeaderTypes | None = None,
    ) -> httpx.Request:
        """The ``httpx.Request`` a call would send (``url`` relative to ``base_url``)."""
        if self._headers is not None:
            merged = self._headers.copy()
            if headers is not None:
                merged.update(headers)
            headers = merged
        if content is None and data is None and files is None and params is None:
            return _json_request(method.upper(), self._merge_url(url), json, headers)
        return httpx.Request(
            method.upper(),
            self._merge_url(url),
            params=params,
            headers=headers,
            content=content,
            data=data,
            files=files,
            json=json,
        )

    async def request(
        self,
        method: str,
        url: httpx.URL | str,
        *,
        content: RequestContent | None = None,
        data: RequestData | None = None,
        files: RequestFiles | None = None,
        json: Any | None = None,
        params: QueryParamTypes | None = None,
        headers: HeaderTypes | None = None,
        timeout: TimeoutArg = httpx.USE_CLIENT_DEFAULT,  # noqa: ASYNC109 - httpx's API
        idempotent: bool | None = None,
        budget: float | None = None,
    ) -> httpx.Response:
        """Send a request; return its response unless it failed transiently.

        Raises :class:`TransientHTTPError` (:class:`CircuitOpenError` when failing fast) for
        timeouts, connection failures, 5xx, 408 and 429 once retries are exhausted or not allowed.
        """
        request = self.build_request(
            method,
            url,
            content=content,
            data=data,
            files=files,
            json=json,
            params=params,
            headers=headers,
        )
        return await self.send(request, timeout=timeout, idempotent=idempotent, budget=budget)

    async def send(
        self,
        request: httpx.Request,
        *,
        timeout: TimeoutArg = httpx.USE_CLIENT_DEFAULT,  # noqa: ASYNC109 - httpx's API
        idempotent: bool | None = None,
        budget: float | None = None,
    ) -> httpx.Response:
        """Send a built request with the client's retries, breaker, tracing and token."""
        if self._closed:
            raise RuntimeError(f"the {self.name} HTTP client is closed")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + (self._budget if budget is None else budget)
        limits = self._timeout if isinstance(timeout, UseClientDefault) else timeout
        policy = self._retry
        retryable = (
            policy.retries > 0 and is_idempotent(request, idempotent) and is_replayable(request)
        )
        breaker = self._breaker_for(request.url)
        token_provider = self._token_provider
        if token_provider is not None and "authorization" in request.headers:
            token_provider = None  # the caller's own credentials win
        attempt = 0
        failure: TransientHTTPError | None = None
        while True:
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise self._failure(request, "timeout", attempt, "the call's budget is spent")
            if token_provider is not None:
                request.headers["Authorization"] = "Bearer " + await token_provider()
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
            request.extensions["timeout"] = _timeouts(limits, remaining)
            try:
                response = await self._attempt(request, attempt)
            except (httpx.TransportError, TimeoutError) as exc:
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
            except BaseException:
                breaker.release(admission)  # cancelled, or a bug: no verdict on the target
                raise
            else:
                status = response.status_code
                if not is_transient_status(status):
                    breaker.record_success(admission)
                    return response
                if status in (429, 503) and "retry-after" in response.headers:
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

    def circuit_state(self, url: httpx.URL | str = "") -> CircuitState:
        """The breaker state of the host ``url`` (relative to ``base_url``) points at."""
        return self._breaker_for(httpx.URL(self._merge_url(url))).state

    async def aclose(self) -> None:
        """Close the connection pool (idempotent)."""
        if not self._closed:
            self._closed = True
            await self._transport.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    # -- internals ------------------------------------------------------------------------------

    async def _attempt(self, request: httpx.Request, attempt: int) -> httpx.Response:
        """One exchange: a CLIENT span, traceparent, the transport call, the body read."""
        span = self._tracer.start_span(request.method, kind=SpanKind.CLIENT)
        if span.is_recording():
            span.set_attributes(self._span_attributes(request))
            if attempt:
                span.set_attribute("http.request.resend_count", attempt)
        # The span is current while the transport runs (so logs correlate), with HTTP
        # instrumentation suppressed: an instrumented httpx or aiohttp adds no second span.
        current = trace.set_span_in_context(span)
        inject_trace_context(request.headers, current)
        token = context.attach(context.set_value(_SUPPRESS_HTTP_INSTRUMENTATION_KEY, True, current))
        started = perf_counter()
        try:
            response = await self._transport.handle_async_request(request)
            if not response.is_closed:  # a streaming transport: read the body here
                try:
                    await response.aread()
                finally:
                    await response.aclose()
        except BaseException as exc:
            if span.is_recording() and isinstance(exc, Exception):
                span.set_attribute("error.type", type(exc).__qualname__)
                span.set_status(Status(StatusCode.ERROR, str(exc)))
            span.end()
            raise
        finally:
            context.detach(token)
        response.request = request
        response.elapsed = timedelta(seconds=perf_counter() - started)
        if span.is_recording():
            span.set_attribute("http.response.status_code", response.status_code)
            if response.status_code >= 400:
                span.set_attribute("error.type", str(response.status_code))
                span.set_status(Status(StatusCode.ERROR))
        span.end()
        return response

    def _failure(
        self,
        request: httpx.Request,
        kind: FailureKind,
        attempts: int,
        why: str,
        response: httpx.Response | None = None,
    ) -> TransientHTTPError:
        retry_after = None
        if response is not None:
            retry_after = parse_retry_after(response.headers.get("retry-after"))
        return TransientHTTPError(
            f"{request.method} {request.url} failed ({kind}): {why}",
            method=request.method,
            url=str(request.url),
            kind=kind,
            attempts=attempts,
            retry_after=retry_after,
            response=response,  # type: ignore[arg-type]
        )

    def _merge_url(self, url: httpx.URL | str) -> httpx.URL | str:
        # Same rule as httpx.AsyncClient: a relative url is appended to base_url's path.
        if self._urls is None:
            return url
        if isinstance(url, str):
            return self._urls.join(url)
        if not url.is_relative_url:
            return url
        raw_path = self.base_url.raw_path + url.raw_path.lstrip(b"/")
        return self.base_url.copy_with(raw_path=raw_path)

    def _breaker_for(self, url: httpx.URL) -> CircuitBreaker:
        key = url.netloc
        breaker = self._breakers.get(key)
        if breaker is None:
            breaker = CircuitBreaker(
                f"{self.name} ({url.scheme}://{key.decode('ascii')})",
                failure_threshold=self._breaker_threshold,
                reset_timeout=self._breaker_reset,
            )
            self._breakers[key] = breaker
        return breaker

    def _span_attributes(self, request: httpx.Request) -> dict[str, str | int]:
        url = request.url
        return {
            "http.request.method": request.method,
            "server.address": url.host,
            "server.port": url.port or _DEFAULT_PORTS.get(url.scheme, 0),
            "url.full": str(url),
            "peer.service": self.name,
        }


def create_http_client(
    settings: HttpClientSettings,
    *,
    base_url: str,
    name: str,
    token_provider: TokenProvider | None = None,
    transport: TransportKind | httpx.AsyncBaseTransport = "httptools",
    budget: float | None = None,
    headers: Mapping[str, str] | None = None,
) -> ResilientClient:
    """A :class:`ResilientClient` for one downstream service, configured from ``settings``.

    ``transport`` is ``"httptools"`` (default: :mod:`.wire`), ``"aiohttp"``, ``"native"`` (httpx's
    own pool) or any httpx async transport (``httpx.ASGITransport(app)`` for in-process tests).
    ``budget`` bounds a whole call, retries and waits included; it defaults to
    ``connect_timeout + read_timeout + retry_after_max`` (one full attempt plus the longest wait the
    client honours).
    """
    timeout = httpx.Timeout(
        connect=settings.connect_timeout,
        read=settings.read_timeout,
        write=settings.read_timeout,
        pool=settings.connect_timeout,
    )
    retry = RetryPolicy(
        retries=settings.retries,
        backoff_base=settings.backoff_base,
        backoff_max=settings.backoff_max,
        retry_after_max=settings.retry_after_max,
    )
    if budget is None:
        budget = settings.connect_timeout + settings.read_timeout + settings.retry_after_max
    return ResilientClient(
        build_transport(transport, settings),
        name=name,
        base_url=base_url,
        timeout=timeout,
        retry=retry,
        budget=budget,
        breaker_failure_threshold=settings.breaker_failure_threshold,
        breaker_reset_timeout=settings.breaker_reset_timeout,
        token_provider=token_provider,
        headers=headers,
    )


_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


def _json_request(
    method: str, url: httpx.URL | str, json: Any, headers: HeaderTypes | None
) -> httpx.Request:
    """``httpx.Request(method, url, json=json, headers=headers)``, built in fewer steps.

    A call with no body or a JSON one (nearly every call a service makes) skips httpx's general
    encoding and header preparation, which cost more than the rest of the client's own work. The
    result is the same request: the body encoded as httpx encodes JSON, ``Host`` first, then
    ``Content-Length`` (and ``Content-Type``) unless the caller set them, then the caller's headers.
    Anything with ``content``, ``data``, ``files`` or ``params`` goes through ``httpx.Request``.
    """
    if not isinstance(url, httpx.URL):
        url = httpx.URL(url)
    auto: list[tuple[bytes, bytes]] = [(b"Host", url.netloc)]
    body = b""
    if json is not None:
        body = json_dumps(json, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()
        auto += ((b"Content-Length", b"%d" % len(body)), (b"Content-Type", b"application/json"))
    elif method in _BODY_METHODS:
        auto.append((b"Content-Length", b"0"))
    if headers:
        given = headers if isinstance(headers, httpx.Headers) else httpx.Headers(headers)
        mine = {key.lower() for key, _ in given.raw}
        auto = [pair for pair in auto if pair[0].lower() not in mine]
        auto += given.raw
    request = httpx.Request(method, url, headers=auto, stream=httpx.ByteStream(body))
    request.read()
    return request


def _timeouts(limits: float | httpx.Timeout, remaining: float) -> dict[str, float]:
    """httpx's per-request timeout extension, each value clipped to the budget left."""
    if not isinstance(limits, httpx.Timeout):
        value = min(limits, remaining)
        return {"connect": value, "read": value, "write": value, "pool": value}
    return {
        "connect": _clip(limits.connect, remaining),
        "read": _clip(limits.read, remaining),
        "write": _clip(limits.write, remaining),
        "pool": _clip(limits.pool, remaining),
    }


def _clip(value: float | None, remaining: float) -> float:
    return remaining if value is None or value > remaining else value
