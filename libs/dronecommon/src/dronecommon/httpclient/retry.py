"""When to retry, and how long to wait.

- **What is transient.** Transport failures that may heal (timeouts, refused or reset connections,
  DNS failures, a connection dropped mid-response) and the statuses 408, 429 and 5xx. Only 408, 429,
  502, 503 and 504 are *retried* in-process: they say "not now"; a 500 says "I broke on this
  request" and is handed to the caller at once (still as a transient failure).
- **What is not retried.** A malformed response or one over the client's size limits
  (``protocol``): transient for the caller, but asking again would get the same answer.
- **What may be retried.** Idempotent calls only: GET, HEAD, PUT, DELETE, OPTIONS, TRACE, or any
  call carrying an ``Idempotency-Key`` header; the caller can override with
  ``idempotent=True/False``.
  A body that cannot be replayed (a streamed upload) is never retried.
- **How long to wait.** Exponential backoff with *full jitter*
  (``uniform(0, min(backoff_max, backoff_base * 2**attempt))``, as in the AWS architecture blog's
  "Exponential Backoff And Jitter"), unless the server sent ``Retry-After`` (delta-seconds or an
  HTTP-date): then that, capped by ``retry_after_max``. The caller's overall budget stops retrying
  when the next wait would not leave time for another attempt.
"""

from __future__ import annotations

import email.utils
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

import aiohttp

from dronecommon.httpclient.errors import FailureKind, PoolTimeoutError, ResponseTooLargeError

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS", "TRACE"})
RETRYABLE_STATUSES = frozenset({408, 429, 502, 503, 504})
IDEMPOTENCY_KEY = "Idempotency-Key"


def is_transient_status(status: int) -> bool:
    """A status that means "the server could not do it now" (5xx, 408, 429)."""
    return status >= 500 or status in (408, 429)


def is_idempotent(method: str, headers: Mapping[str, str], override: bool | None = None) -> bool:
    """Whether sending the request twice has the effect of sending it once.

    ``headers`` must look names up case-insensitively (a ``CIMultiDict``).
    """
    if override is not None:
        return override
    return method in IDEMPOTENT_METHODS or IDEMPOTENCY_KEY in headers


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from ``Retry-After`` (delta-seconds or HTTP-date); None if unusable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # "-0000": RFC 5322 for "UTC, source unknown"
        when = when.replace(tzinfo=UTC)
    current = now if now is not None else datetime.now(UTC)
    return max(0.0, (when - current).total_seconds())


def classify_transport_error(exc: BaseException) -> FailureKind | None:
    """The failure kind of an exception raised while exchanging, or None when not transient.

    aiohttp's exceptions, most specific first: a connection that could not be opened (refused,
    DNS, TLS, or no connection in time) is ``connect``; no data in time, or the call's budget
    running out, is ``timeout``; a connection dropped or reset mid-exchange, or a body cut short,
    is ``network``; an answer that breaks HTTP or the client's size limits is ``protocol``. An
    invalid URL, a scheme other than http(s) and anything else are not transient (None).
    """
    if isinstance(exc, aiohttp.ClientConnectorError | aiohttp.ConnectionTimeoutError):
        return "connect"
    if isinstance(exc, ResponseTooLargeError):
        return "protocol"
    if isinstance(exc, PoolTimeoutError):
        return "pool"
    if isinstance(exc, aiohttp.ServerTimeoutError | TimeoutError):
        return "timeout"
    if isinstance(exc, aiohttp.InvalidURL | aiohttp.NonHttpUrlClientError):
        return None
    if isinstance(exc, aiohttp.ClientConnectionError | aiohttp.ClientPayloadError):
        return "network"
    if isinstance(exc, aiohttp.ClientResponseError):
        return "protocol"  # raised by the request itself: the response could not be parsed
    return None


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How many times to retry and how long to wait in between."""

    retries: int = 3
    backoff_base: float = 0.1
    backoff_max: float = 2.0
    retry_after_max: float = 10.0

    def delay(
        self,
        attempt: int,
        retry_after: float | None = None,
        *,
        rng: Callable[[], float] = random.random,
    ) -> float:
        """The wait before retry number ``attempt + 1`` (``attempt`` counts from 0)."""
        if retry_after is not None:
            return min(retry_after, self.retry_after_max)
        ceiling = min(self.backoff_max, self.backoff_base * (2.0**attempt))
        return ceiling * rng()
