"""Tokens already verified: the caller each proved, until it expires (:class:`VerifiedTokens`).

Every call between the services, and every customer request, carries a bearer token, and the
same token comes again and again: a service reuses its token until shortly before it expires, a
customer's client for the length of a session. Verifying one (parsing it, checking the RSA or
ECDSA signature and the claims) costs far more than the rest of a small request, so a token that
was verified is remembered — by its exact text, which is what the signature covered — with the
caller it proved, and answered from memory until:

- its ``exp`` (never beyond it; a token without one is not remembered), or
- the signing keys it was checked against are no longer the fresh set in use: when the keys are
  due for their periodic refresh or have changed (a rotation, a key withdrawn), every token is
  verified again against the keys then in use.

Only successes are remembered: a refused token is checked in full each time. The memory is
bounded (:data:`DEFAULT_SIZE` tokens; the oldest is forgotten first). JWT gateways do the same
(Envoy's ``jwt_authn`` filter keeps verified tokens until they expire).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Generic, TypeVar

#: Tokens remembered at most (a few megabytes: tokens are about a kilobyte each).
DEFAULT_SIZE = 10_000

C = TypeVar("C")


class VerifiedTokens(Generic[C]):
    """``token -> (caller, expires at, keys)``, bounded, checked on every read."""

    def __init__(
        self, size: int = DEFAULT_SIZE, *, wall_clock: Callable[[], float] = time.time
    ) -> None:
        self.size = size
        self.hits = 0
        self._clock = wall_clock
        self._entries: dict[str, tuple[C, float, object]] = {}

    def get(self, token: str, keys: object | None) -> C | None:
        """The caller ``token`` proved, if it was verified against ``keys`` (the fresh key set
        in use, None when there is none) and has not expired."""
        entry = self._entries.get(token)
        if entry is None:
            return None
        caller, expires, verified_with = entry
        if keys is None or verified_with is not keys or self._clock() >= expires:
            del self._entries[token]
            return None
        self.hits += 1
        return caller

    def put(self, token: str, caller: C, expires: Any, keys: object | None) -> None:
        """Remember a verification made with ``keys`` until ``expires`` (the ``exp`` claim)."""
        if self.size <= 0 or keys is None or not isinstance(expires, int | float):
            return
        if isinstance(expires, bool) or expires <= self._clock():
            return
        if len(self._entries) >= self.size:
            del self._entries[next(iter(self._entries))]
        self._entries[token] = (caller, float(expires), keys)

    def __len__(self) -> int:
        return len(self._entries)
