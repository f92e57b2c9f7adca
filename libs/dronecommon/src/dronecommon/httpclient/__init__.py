"""Outbound HTTP for service-to-service calls: one resilient client per downstream service.

``create_http_client(settings.http, base_url=..., name="package")`` gives a :class:`ResilientClient`
on one ``aiohttp.ClientSession``, with connect/read timeouts, retries with exponential backoff and
full jitter (idempotent calls only, ``Retry-After`` honoured), an overall per-call budget, a
circuit breaker per target host, a CLIENT span per attempt with ``traceparent`` propagated, an
optional bearer token and limits on what a response may be (body size, header sizes and count).
Calls return a :class:`Response`, read whole.

Failures a caller should retry later raise :class:`TransientHTTPError` (:class:`CircuitOpenError`
when the breaker fails fast); permanent answers (4xx other than 408/429) come back as responses for
the caller to inspect. The full classification is in :mod:`dronecommon.httpclient.errors`.

``create_probe_client(timeout)`` gives the same client shaped for health probes of other services:
one attempt, a breaker that never opens, no spans.
"""

from dronecommon.httpclient.breaker import CircuitBreaker, CircuitState
from dronecommon.httpclient.client import (
    ResilientClient,
    TokenProvider,
    create_http_client,
    create_probe_client,
)
from dronecommon.httpclient.errors import (
    CircuitOpenError,
    FailureKind,
    HTTPClientError,
    TransientHTTPError,
)
from dronecommon.httpclient.request import Request
from dronecommon.httpclient.response import Response
from dronecommon.httpclient.retry import RetryPolicy, parse_retry_after

__all__ = [
    "CircuitBreaker",
    "CircuitOpenError",
    "CircuitState",
    "FailureKind",
    "HTTPClientError",
    "Request",
    "ResilientClient",
    "Response",
    "RetryPolicy",
    "TokenProvider",
    "TransientHTTPError",
    "create_http_client",
    "create_probe_client",
    "parse_retry_after",
]
