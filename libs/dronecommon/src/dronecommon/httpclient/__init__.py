"""Outbound HTTP for service-to-service calls: one resilient client per downstream service.

``create_http_client(settings.http, base_url=..., name="package")`` gives a :class:`ResilientClient`
with httpx's API shape over a lean HTTP/1.1 transport (:mod:`.wire`), with connect/read timeouts,
retries with exponential backoff and full jitter (idempotent calls only, ``Retry-After``
honoured), an overall per-call budget, a circuit breaker per target host, a CLIENT span per
attempt with ``traceparent`` propagated, and an optional bearer token.

Failures a caller should retry later raise :class:`TransientHTTPError` (:class:`CircuitOpenError`
when the breaker fails fast); permanent answers (4xx other than 408/429) come back as responses for
the caller to inspect. The full classification is in :mod:`dronecommon.httpclient.errors`.
"""

from dronecommon.httpclient.breaker import CircuitBreaker, CircuitState
from dronecommon.httpclient.client import ResilientClient, TokenProvider, create_http_client
from dronecommon.httpclient.errors import (
    CircuitOpenError,
    FailureKind,
    HTTPClientError,
    TransientHTTPError,
)
from dronecommon.httpclient.retry import RetryPolicy, parse_retry_after
from dronecommon.httpclient.transport import TransportKind

__all__ = [
    "CircuitBreaker",
    "CircuitOpenError",
    "CircuitState",
    "FailureKind",
    "HTTPClientError",
    "ResilientClient",
    "RetryPolicy",
    "TokenProvider",
    "TransientHTTPError",
    "TransportKind",
    "create_http_client",
    "parse_retry_after",
]
