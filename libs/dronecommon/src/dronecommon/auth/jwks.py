"""The token issuer's signing keys, fetched, cached and refreshed (:class:`SigningKeys`).

Keys come from ``jwks_url`` (fetched with aiohttp, bounded by a total timeout, never blocking the
event loop) or ``jwks_file`` (read in a worker thread). They are cached for
``jwks_cache_seconds``; a token naming an unknown ``kid`` triggers one refetch, at most once per
``refetch_interval`` (key rotation without letting forged ``kid``\\s hammer the issuer). One fetch
runs at a time and concurrent requests share its result. When a refresh of expired keys fails, the
old keys stay in use (logged) rather than failing every request. Only RS256 and ES256 signature
keys are kept, each usable with its own algorithm only.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Protocol

import aiohttp
import jwt

from dronecommon.auth.errors import AuthenticationError, SigningKeysUnavailableError

logger = logging.getLogger("dronecommon.auth.inbound")  # the log of inbound authentication

ALGORITHMS = ("RS256", "ES256")
DEFAULT_JWKS_TIMEOUT = 3.0
DEFAULT_REFETCH_INTERVAL = 10.0
MAX_JWKS_BYTES = 1024 * 1024


class JwksSource(Protocol):
    """Where a JWKS document comes from."""

    description: str

    async def fetch(self) -> Mapping[str, Any]:
        """The JWKS document; raises :class:`SigningKeysUnavailableError` when it cannot."""
        ...


class HttpJwks:
    """A JWKS served over HTTP (an OpenID provider's ``jwks_uri``)."""

    def __init__(self, url: str, *, timeout: float = DEFAULT_JWKS_TIMEOUT) -> None:
        self.url = url
        self.timeout = timeout
        self.description = url

    async def fetch(self) -> Mapping[str, Any]:
        # A session per fetch: fetches are rare (hourly) and nothing outlives the call. Redirects
        # are followed and proxy settings read from the environment, as the issuer's documented
        # endpoint may sit behind either.
        try:
            async with (
                asyncio.timeout(self.timeout),
                aiohttp.ClientSession(trust_env=True) as session,
                session.get(
                    self.url, headers={"Accept": "application/json"}, raise_for_status=True
                ) as response,
            ):
                body = await _read_capped(response)
        except TimeoutError as exc:
            message = f"{self.url}: timed out after {self.timeout}s"
            raise SigningKeysUnavailableError(message) from exc
        except aiohttp.ClientError as exc:
            raise SigningKeysUnavailableError(f"{self.url}: {type(exc).__name__}: {exc}") from exc
        return _parse_document(body, self.url)


async def _read_capped(response: aiohttp.ClientResponse) -> bytes:
    """The body, or its first bytes past :data:`MAX_JWKS_BYTES` (refused when parsed)."""
    body = bytearray()
    async for chunk in response.content.iter_chunked(64 * 1024):
        body += chunk
        if len(body) > MAX_JWKS_BYTES:
            break
    return bytes(body)


class FileJwks:
    """A JWKS in a local file (the development issuer's ``jwks.json``)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.description = str(self.path)

    async def fetch(self) -> Mapping[str, Any]:
        try:
            body = await asyncio.to_thread(self.path.read_bytes)
        except OSError as exc:
            raise SigningKeysUnavailableError(f"{self.path}: {exc.strerror or exc}") from exc
        return _parse_document(body, str(self.path))


def _parse_document(body: bytes, origin: str) -> Mapping[str, Any]:
    if len(body) > MAX_JWKS_BYTES:
        raise SigningKeysUnavailableError(f"{origin}: JWKS larger than {MAX_JWKS_BYTES} bytes")
    try:
        document = json.loads(body)
    except ValueError as exc:
        raise SigningKeysUnavailableError(f"{origin}: not JSON") from exc
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise SigningKeysUnavailableError(f"{origin}: not a JWKS (no 'keys' list)")
    return document


def _signing_keys(document: Mapping[str, Any], origin: str) -> dict[str | None, jwt.PyJWK]:
    """The usable signature keys of a JWKS, by ``kid``."""
    keys: dict[str | None, jwt.PyJWK] = {}
    for entry in document["keys"]:
        if not isinstance(entry, dict) or entry.get("use", "sig") != "sig":
            continue
        try:
            key = jwt.PyJWK(entry)
        except jwt.PyJWTError:
            continue  # a key type or algorithm this service does not use
        if key.algorithm_name in ALGORITHMS:
            keys[key.key_id] = key
    if not keys:
        raise SigningKeysUnavailableError(f"{origin}: no RS256/ES256 signature keys")
    return keys


class SigningKeys:
    """The issuer's signing keys, cached, refreshed on expiry and on an unknown ``kid``."""

    def __init__(
        self,
        source: JwksSource,
        *,
        cache_seconds: float,
        refetch_interval: float = DEFAULT_REFETCH_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.source = source
        self.cache_seconds = cache_seconds
        self.refetch_interval = refetch_interval
        self.fetches = 0  # attempts so far (observability and tests)
        self._completed = 0
        self._clock = clock
        self._keys: dict[str | None, jwt.PyJWK] | None = None
        self._fetched_at = 0.0
        self._attempted_at: float | None = None
        self._last_error = ""
        self._lock: asyncio.Lock | None = None

    def _may_attempt(self) -> bool:
        """A fetch is running (join it) or the last one is at least ``refetch_interval`` old."""
        if self._lock is not None and self._lock.locked():
            return True
        attempted = self._attempted_at
        return attempted is None or self._clock() - attempted >= self.refetch_interval

    async def _refresh(self) -> None:
        """Fetch the JWKS once; concurrent callers wait for that one fetch and share its outcome."""
        if self._lock is None:
            self._lock = asyncio.Lock()
        seen = self._completed
        async with self._lock:
            if self._completed != seen:  # another task fetched while this one waited
                if self._keys is None:
                    raise SigningKeysUnavailableError(self._last_error)
                return
            self.fetches += 1
            self._attempted_at = self._clock()
            try:
                keys = _signing_keys(await self.source.fetch(), self.source.description)
            except SigningKeysUnavailableError as exc:
                self._last_error = str(exc)
                raise
            else:
                self._keys = keys
                self._fetched_at = self._clock()
            finally:
                self._completed += 1

    async def _current(self) -> dict[str | None, jwt.PyJWK]:
        keys = self._keys
        if keys is None:
            if not self._may_attempt():  # the last attempt failed moments ago: do not pile on
                raise SigningKeysUnavailableError(self._last_error)
            await self._refresh()
        elif self._clock() - self._fetched_at >= self.cache_seconds and self._may_attempt():
            try:
                await self._refresh()
            except SigningKeysUnavailableError as exc:
                logger.warning("JWKS refresh failed, keeping the cached keys: %s", exc)
        assert self._keys is not None
        return self._keys

    def fresh(self) -> object | None:
        """The key set in use while it is fresh (loaded and not yet due for a refresh), else
        None. A new set is a new object: a verification remembered with one set
        (:mod:`.verified`) does not count once another is in use."""
        if self._keys is None or self._clock() - self._fetched_at >= self.cache_seconds:
            return None
        return self._keys

    async def key_for(self, kid: str | None) -> jwt.PyJWK:
        """The key that signed a token with this ``kid`` (one refetch when it is unknown)."""
        keys = await self._current()
        key = self._pick(keys, kid)
        if key is None and self._may_attempt():
            # A refetch that fails leaves the kid undecidable: 503, not a verdict on the token.
            await self._refresh()
            key = self._pick(self._keys or {}, kid)
        if key is None:
            raise AuthenticationError("the token's signing key is not one of the issuer's keys")
        return key

    @staticmethod
    def _pick(keys: Mapping[str | None, jwt.PyJWK], kid: str | None) -> jwt.PyJWK | None:
        if kid is None:
            return next(iter(keys.values())) if len(keys) == 1 else None
        return keys.get(kid)
