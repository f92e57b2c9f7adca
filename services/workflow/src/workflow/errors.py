"""How the workflow classifies a failed message.

- :class:`PermanentError` — the message can never succeed as it is (malformed, unknown operation,
  a downstream 4xx other than 401/403/408/409/429): dead-letter it at once with ``reason``.
- :class:`OperatorRequired` — the queue view refuses a caller without the Operator role.
- :class:`TransientError` — it may succeed later (a downstream outage after the HTTP client's own
  retries, an unexpected answer, the pending store unreachable): hold, then abandon it for
  redelivery. :class:`dronecommon.httpclient.TransientHTTPError` is transient too.
- :class:`CredentialsRefused` — a downstream 401/403: transient *with an alarm*. The request is
  fine; the workflow's identity is not (a rotated key, a role granted late, a misconfigured
  audience), which an operator fixes without the message changing. Retried like an outage and
  logged as an ERROR naming the service and the scope the token was requested for.
"""

from __future__ import annotations

from dronecommon import DomainError


class PermanentError(Exception):
    """Dead-letter the message now: ``reason`` is a short name, the message the description."""

    def __init__(self, reason: str, description: str) -> None:
        super().__init__(description)
        self.reason = reason
        self.description = description


class TransientError(Exception):
    """Try the message again later (``retry_after`` seconds, when the cause said so)."""

    def __init__(self, description: str, *, retry_after: float | None = None) -> None:
        super().__init__(description)
        self.retry_after = retry_after


class CredentialsRefused(TransientError):
    """A downstream service refused the workflow's token (401) or its rights (403)."""

    def __init__(self, service: str, status: int, description: str) -> None:
        super().__init__(description)
        self.service = service
        self.status = status


class OperatorRequired(DomainError):
    """The caller does not hold the Operator role."""

    status = 403
    problem = "operator-required"
    title = "Forbidden"
