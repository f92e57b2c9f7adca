"""One attempt of a call as OpenTelemetry sees it: a CLIENT span around the exchange.

Spans are made here, not by opentelemetry-instrumentation-aiohttp-client: the exchange runs with
HTTP instrumentation suppressed (the context key ``suppress_http_instrumentation()`` sets), so a
process that also instruments aiohttp globally still gets exactly one CLIENT span per attempt.
Span attributes follow the HTTP semantic conventions: ``http.request.method``, ``url.full``,
``server.address``, ``server.port``, ``peer.service`` (the client's name),
``http.response.status_code``, ``http.request.resend_count`` (a retry), ``error.type`` (the status
code from 400 up, or the exception class).
"""

from __future__ import annotations

from datetime import timedelta
from time import perf_counter

from opentelemetry import context, trace

# The key opentelemetry-instrumentation's suppress_http_instrumentation() sets, set here directly
# to save a generator-based context manager per request.
from opentelemetry.context import _SUPPRESS_HTTP_INSTRUMENTATION_KEY
from opentelemetry.trace import SpanKind, Status, StatusCode

from dronecommon.httpclient.request import Request
from dronecommon.httpclient.response import Response
from dronecommon.httpclient.session import Wire
from dronecommon.propagation import inject_trace_context


async def traced_exchange(
    tracer: trace.Tracer,
    peer: str,
    wire: Wire,
    request: Request,
    attempt: int,
    deadline: float,
    connect: float,
    read: float,
) -> Response:
    """One exchange on ``wire`` in a CLIENT span whose context travels as ``traceparent``."""
    span = tracer.start_span(request.method, kind=SpanKind.CLIENT)
    if span.is_recording():
        url = request.url
        span.set_attributes(
            {
                "http.request.method": request.method,
                "server.address": url.host or "",
                "server.port": url.port or 0,
                "url.full": str(url),
                "peer.service": peer,
            }
        )
        if attempt:
            span.set_attribute("http.request.resend_count", attempt)
    # The span is current while aiohttp runs (so logs correlate), with HTTP instrumentation
    # suppressed: an instrumented aiohttp adds no second span.
    current = trace.set_span_in_context(span)
    inject_trace_context(request.headers, current)
    token = context.attach(context.set_value(_SUPPRESS_HTTP_INSTRUMENTATION_KEY, True, current))
    started = perf_counter()
    try:
        response = await wire.exchange(request, deadline, connect, read)
    except BaseException as exc:
        if span.is_recording() and isinstance(exc, Exception):
            span.set_attribute("error.type", type(exc).__qualname__)
            span.set_status(Status(StatusCode.ERROR, str(exc)))
        span.end()
        raise
    finally:
        context.detach(token)
    response.elapsed = timedelta(seconds=perf_counter() - started)
    if span.is_recording():
        span.set_attribute("http.response.status_code", response.status_code)
        if response.status_code >= 400:
            span.set_attribute("error.type", str(response.status_code))
            span.set_status(Status(StatusCode.ERROR))
    span.end()
    return response
