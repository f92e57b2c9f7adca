"""What inbound authentication refuses a request with, and the answer each gets (RFC 6750).

- :class:`AuthenticationError`: no token, or one that fails validation — 401 with
  ``WWW-Authenticate: Bearer`` (plus ``error="invalid_token"`` and a description when a token was
  sent);
- :class:`PermissionDeniedError`: a valid token from a caller that is not admitted — 403 with
  ``error="insufficient_scope"``;
- :class:`SigningKeysUnavailableError`: the issuer's signing keys cannot be had at all — 503 with
  ``Retry-After``: an identity provider outage is not the client's fault and must not look like a
  server bug.
"""

from __future__ import annotations

from fastapi import HTTPException

RETRY_AFTER_SECONDS = 5


class AuthenticationError(Exception):
    """The token is missing or not valid (401)."""


class PermissionDeniedError(Exception):
    """The token is valid but its caller is not admitted (403)."""


class SigningKeysUnavailableError(Exception):
    """The issuer's signing keys could not be had (503)."""


def _quoted(text: str) -> str:
    """``text`` made safe inside a quoted-string of an auth-param."""
    return "".join(ch for ch in text if ch.isprintable() and ch not in '"\\')


def http_error(exc: Exception, *, token_sent: bool) -> HTTPException:
    """The HTTP answer to a refusal; ``token_sent`` tells a missing token from a bad one."""
    description = _quoted(str(exc))
    if isinstance(exc, PermissionDeniedError):
        challenge = f'Bearer error="insufficient_scope", error_description="{description}"'
        return HTTPException(403, detail=str(exc), headers={"WWW-Authenticate": challenge})
    if isinstance(exc, SigningKeysUnavailableError):
        return HTTPException(
            503,
            detail=f"the token issuer's signing keys are unavailable: {exc}",
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        )
    if not token_sent:
        return HTTPException(401, detail=str(exc), headers={"WWW-Authenticate": "Bearer"})
    challenge = f'Bearer error="invalid_token", error_description="{description}"'
    return HTTPException(401, detail=str(exc), headers={"WWW-Authenticate": challenge})
