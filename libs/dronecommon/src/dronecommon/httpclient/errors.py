"""The errors the outbound HTTP client raises itself, so callers can classify failures.

Classification (what a caller such as the workflow should do):

- :class:`TransientHTTPError` — *try again later*. Raised for timeouts, connection failures
  (refused, reset, DNS), a connection dropped mid-response, a malformed response or one over the
  client's size limits, any 5xx, 408 and 429 once the client's own retries are used up (or when
  the call was not retryable), and — as the subclass
  :class:`CircuitOpenError` — when the target's circuit breaker is open. ``retry_after`` holds the
  server's ``Retry-After`` (in seconds, uncapped) or the time left before the breaker lets a probe
  through, when known; ``response`` holds the last response for status failures.
- A returned :class:`~dronecommon.httpclient.Response` — everything else: 2xx/3xx, and 4xx
  other than 408/429, which are *permanent* for that request (the caller inspects
  ``status_code``: 404, 409, 400...).
  The client never raises for them, never retries them, and they do not count against the
  circuit breaker.
- Anything else (``aiohttp.InvalidURL``, also raised for a scheme other than http(s); an
  exception from the token provider; a body that cannot be encoded; cancellation) propagates
  unchanged: a configuration or programming error, not an outage.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from dronecommon.httpclient.response import Response

FailureKind = Literal["timeout", "connect", "network", "protocol", "pool", "status", "circuit_open"]
"""Why a call failed transiently: ``timeout`` (no answer in time, or the call's budget spent),
``connect`` (could not open a connection), ``network`` (connection dropped or broken
mid-exchange), ``protocol`` (a malformed response, or one over the client's size limits),
``pool`` (no free local connection in time), ``status`` (a transient status code),
``circuit_open`` (failed fast)."""


class HTTPClientError(Exception):
    """Base of the errors raised by :class:`~dronecommon.httpclient.ResilientClient`."""

    def __init__(self, message: str, *, method: str, url: str) -> None:
        super().__init__(message)
        self.method = method
        self.url = url


class TransientHTTPError(HTTPClientError):
    """The call failed for a reason that may go away: retry later (abandon the message)."""

    def __init__(
        self,
        message: str,
        *,
        method: str,
        url: str,
        kind: FailureKind,
        attempts: int,
        retry_after: float | None = None,
        response: Response | None = None,
    ) -> None:
        super().__init__(message, method=method, url=url)
        self.kind: FailureKind = kind
        self.attempts = attempts
        self.retry_after = retry_after
        self.response = response

    @property
    def status_code(self) -> int | None:
        """The status of the last response, when the failure was a status code."""
        return self.response.status_code if self.response is not None else None


class CircuitOpenError(TransientHTTPError):
    """The target's circuit breaker is open: the call failed fast without touching the network."""


class ResponseTooLargeError(Exception):
    """A response body over ``max_response_body``; the client raises it as ``protocol``."""


class PoolTimeoutError(Exception):
    """No local connection came free in time; the client raises it as ``pool``."""
