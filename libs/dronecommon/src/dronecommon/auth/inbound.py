"""Inbound authentication: who is calling, checked on every request.

:func:`auth_dependency` turns :class:`~dronecommon.settings.AuthSettings` into a FastAPI dependency
for routers or whole apps::

    app = FastAPI(dependencies=[Depends(auth_dependency(settings.auth))])

With ``enabled`` false it returns an anonymous :class:`Caller` and never reads the header.
Otherwise it validates the ``Authorization: Bearer`` JWT:

- signature against the issuer's JWKS (RS256 or ES256; each key verifies only with its own
  algorithm, so a token cannot choose a weaker one), ``iss``, ``aud``, ``exp`` and ``nbf`` with
  ``leeway_seconds``; ``exp``, ``iss`` and ``aud`` must be present;
- the caller, when ``allowed_callers`` is non-empty: its application id (``azp`` in Entra v2 tokens,
  ``appid`` in v1) or object id (``oid``) must be listed;
- the roles, when ``required_roles`` is non-empty: the ``roles`` claim must hold one of them.

Answers follow RFC 6750: no token, or a token that fails validation, is 401 with
``WWW-Authenticate: Bearer`` (plus ``error="invalid_token"`` and a description when a token was
sent); a valid token from a caller that is not admitted is 403 with ``error="insufficient_scope"``.
When the signing keys cannot be had at all the answer is 503 with ``Retry-After``: an identity
provider outage is not the client's fault and must not look like a server bug.

Signing keys (:class:`SigningKeys`) come from ``jwks_url`` (fetched with httpx, bounded by a total
timeout, never blocking the event loop) or ``jwks_file`` (read in a worker thread). They are cached
for ``jwks_cache_seconds``; a token naming an unknown ``kid`` triggers one refetch, at most once per
``refetch_interval`` (key rotation without letting forged ``kid``\\s hammer the issuer). One fetch
runs at a time and concurrent requests share its result. When a refresh of expired keys fails, the
old keys stay in use (logged) rather than failing every request.

The validated :class:`Caller` is also stored on ``request.state.caller``; handlers read it with
the :data:`CurrentCaller` alias.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Protocol

import httpx
import jwt
from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from dronecommon.settings import AuthSettings

logger = logging.getLogger(__name__)

ALGORITHMS = ("RS256", "ES256")
DEFAULT_JWKS_TIMEOUT = 3.0
DEFAULT_REFETCH_INTERVAL = 10.0
MAX_JWKS_BYTES = 1024 * 1024
RETRY_AFTER_SECONDS = 5

_bearer = HTTPBearer(
    auto_error=False,
    description="A Microsoft Entra ID access token for this service (development issuer locally).",
)


@dataclass(frozen=True, slots=True)
class Caller:
    """The authenticated caller of a request."""

    subject: str
    app_id: str | None = None
    object_id: str | None = None
    tenant_id: str | None = None
    roles: tuple[str, ...] = ()
    claims: Mapping[str, Any] = field(default_factory=dict)
    authenticated: bool = True

    @classmethod
    def from_claims(cls, claims: Mapping[str, Any]) -> Caller:
        """The caller a validated token describes (Entra v1 and v2 claim names)."""
        roles = claims.get("roles")
        role_list = tuple(str(role) for role in roles) if isinstance(roles, list) else ()
        return cls(
            subject=str(claims.get("sub", "")),
            app_id=_str_or_none(claims.get("azp") or claims.get("appid")),
            object_id=_str_or_none(claims.get("oid")),
            tenant_id=_str_or_none(claims.get("tid")),
            roles=role_list,
            claims=dict(claims),
        )

    def has_role(self, role: str) -> bool:
        return role in self.roles


ANONYMOUS = Caller(subject="anonymous", authenticated=False)


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


# --- Failures ----------------------------------------------------------------------------------


class AuthenticationError(Exception):
    """The token is missing or not valid (401)."""


class PermissionDeniedError(Exception):
    """The token is valid but its caller is not admitted (403)."""


class SigningKeysUnavailableError(Exception):
    """The issuer's signing keys could not be had (503)."""


def _quoted(text: str) -> str:
    """``text`` made safe inside a quoted-string of an auth-param."""
    return "".join(ch for ch in text if ch.isprintable() and ch not in '"\\')


def _http_error(exc: Exception, *, token_sent: bool) -> HTTPException:
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


# --- Signing keys ------------------------------------------------------------------------------


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
        # A client per fetch: fetches are rare (hourly) and nothing outlives the call.
        try:
            async with (
                asyncio.timeout(self.timeout),
                httpx.AsyncClient(timeout=self.timeout, follow_redirects=True) as client,
            ):
                response = await client.get(self.url, headers={"Accept": "application/json"})
                response.raise_for_status()
                body = response.content
        except TimeoutError as exc:
            message = f"{self.url}: timed out after {self.timeout}s"
            raise SigningKeysUnavailableError(message) from exc
        except httpx.HTTPError as exc:
            raise SigningKeysUnavailableError(f"{self.url}: {type(exc).__name__}: {exc}") from exc
        return _parse_document(body, self.url)


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


# --- Validation --------------------------------------------------------------------------------


def _required(settings: AuthSettings) -> tuple[str, str]:
    missing = [name for name in ("issuer", "audience") if not getattr(settings, name)]
    if not settings.jwks_url and not settings.jwks_file:
        missing.append("jwks_url or jwks_file")
    if missing:
        raise ValueError(f"auth.enabled is true but auth.{', auth.'.join(missing)} not set")
    assert settings.issuer is not None
    assert settings.audience is not None
    return settings.issuer, settings.audience


class Authenticator:
    """Validates bearer tokens against :class:`AuthSettings` (used via :func:`auth_dependency`)."""

    def __init__(
        self,
        settings: AuthSettings,
        *,
        jwks_timeout: float = DEFAULT_JWKS_TIMEOUT,
        refetch_interval: float = DEFAULT_REFETCH_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.issuer, self.audience = _required(settings)
        self.settings = settings
        source: JwksSource = (
            HttpJwks(settings.jwks_url, timeout=jwks_timeout)
            if settings.jwks_url
            else FileJwks(str(settings.jwks_file))
        )
        self.keys = SigningKeys(
            source,
            cache_seconds=settings.jwks_cache_seconds,
            refetch_interval=refetch_interval,
            clock=clock,
        )
        self._allowed_callers = frozenset(settings.allowed_callers)
        self._required_roles = frozenset(settings.required_roles)

    async def authenticate(self, token: str) -> Caller:
        """The caller a token proves, or :class:`AuthenticationError`/
        :class:`PermissionDeniedError`/:class:`SigningKeysUnavailableError`."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise AuthenticationError("the bearer token is not a well-formed JWT") from exc
        if header.get("alg") not in ALGORITHMS:
            raise AuthenticationError(f"the token must be signed with {' or '.join(ALGORITHMS)}")
        kid = header.get("kid")
        key = await self.keys.key_for(kid if isinstance(kid, str) else None)
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=list(ALGORITHMS),
                audience=self.audience,
                issuer=self.issuer,
                leeway=self.settings.leeway_seconds,
                options={"require": ["exp", "iss", "aud"]},
            )
        except jwt.ExpiredSignatureError as exc:
            raise AuthenticationError("the token has expired") from exc
        except jwt.ImmatureSignatureError as exc:
            raise AuthenticationError("the token is not valid yet") from exc
        except jwt.InvalidAudienceError as exc:
            raise AuthenticationError("the token is not meant for this service") from exc
        except jwt.InvalidIssuerError as exc:
            raise AuthenticationError("the token comes from an untrusted issuer") from exc
        except jwt.InvalidSignatureError as exc:
            raise AuthenticationError("the token's signature is not valid") from exc
        except jwt.MissingRequiredClaimError as exc:
            raise AuthenticationError(f"the token has no {exc.claim!r} claim") from exc
        except jwt.PyJWTError as exc:
            raise AuthenticationError("the token is not valid") from exc
        caller = Caller.from_claims(claims)
        self.authorize(caller)
        return caller

    def authorize(self, caller: Caller) -> None:
        """Raise :class:`PermissionDeniedError` unless the caller and its roles are admitted."""
        if self._allowed_callers:
            identities = {caller.app_id, caller.object_id} - {None}
            if not identities & self._allowed_callers:
                raise PermissionDeniedError("this caller is not allowed to call this service")
        if self._required_roles and not self._required_roles.intersection(caller.roles):
            raise PermissionDeniedError(
                "the token holds none of the roles this service requires: "
                + ", ".join(sorted(self._required_roles))
            )

    async def dependency(
        self,
        request: Request,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    ) -> Caller:
        """The FastAPI dependency: a :class:`Caller` or an HTTPException (401/403/503)."""
        if credentials is None:
            raise _http_error(AuthenticationError("a bearer token is required"), token_sent=False)
        try:
            caller = await self.authenticate(credentials.credentials)
        except (AuthenticationError, PermissionDeniedError, SigningKeysUnavailableError) as exc:
            logger.info("request refused: %s", exc)
            raise _http_error(exc, token_sent=True) from exc
        request.state.caller = caller
        return caller


async def _anonymous(request: Request) -> Caller:
    request.state.caller = ANONYMOUS
    return ANONYMOUS


def auth_dependency(
    settings: AuthSettings,
    *,
    jwks_timeout: float = DEFAULT_JWKS_TIMEOUT,
    refetch_interval: float = DEFAULT_REFETCH_INTERVAL,
    clock: Callable[[], float] = time.monotonic,
) -> Callable[..., Awaitable[Caller]]:
    """The dependency that authenticates requests (anonymous when ``settings.enabled`` is false).

    Raises ``ValueError`` at once when auth is enabled without issuer, audience or a JWKS source.
    """
    if not settings.enabled:
        return _anonymous
    authenticator = Authenticator(
        settings, jwks_timeout=jwks_timeout, refetch_interval=refetch_interval, clock=clock
    )
    return authenticator.dependency


def current_caller(request: Request) -> Caller:
    """The caller the auth dependency stored for this request."""
    caller = getattr(request.state, "caller", None)
    if not isinstance(caller, Caller):
        raise RuntimeError("no caller: the auth dependency is not installed on this route")
    return caller


CurrentCaller = Annotated[Caller, Depends(current_caller)]


async def caller_or_anonymous(request: Request) -> Caller:
    """The caller the auth dependency stored, or :data:`ANONYMOUS` where tokens are not checked."""
    caller = request.scope.get("state", {}).get("caller")
    return caller if isinstance(caller, Caller) else ANONYMOUS


AnyCaller = Annotated[Caller, Depends(caller_or_anonymous)]
