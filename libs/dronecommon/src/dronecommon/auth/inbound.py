"""Inbound authentication: who is calling, checked on every request.

:func:`auth_dependency` turns :class:`~dronecommon.settings.AuthSettings` into a FastAPI dependency
for routers or whole apps::

    app = FastAPI(dependencies=[Depends(auth_dependency(settings.auth))])

With ``enabled`` false it returns an anonymous :class:`Caller` whatever the request sends.
Otherwise it validates the ``Authorization: Bearer`` JWT:

- signature against the issuer's JWKS (RS256 or ES256; each key verifies only with its own
  algorithm, so a token cannot choose a weaker one), ``iss``, ``aud`` and ``exp``/``nbf`` with
  ``leeway_seconds``; ``exp``, ``iss`` and ``aud`` must be present. ``aud`` is this service's
  own ``audience`` (a **service** token) or the ``public_audience`` (a **customer** token);
- Microsoft Entra ID v1 tokens (``iss https://sts.windows.net/{tenant}/``, ``ver 1.0``) are
  refused with a detail that says so: the APIs accept v2 tokens only (their app registrations
  set ``requestedAccessTokenVersion: 2``, so ``aud`` is the application id);
- a service caller, when ``allowed_callers`` is non-empty: its application id (``azp`` in v2
  tokens, ``appid`` in v1) or object id (``oid``) must be listed.

What a route then admits (app roles, customers) is its own policy: :mod:`.policy`.

Answers follow RFC 6750: 401, 403, or 503 when the signing keys cannot be had
(:mod:`.errors`). The signing keys are fetched, cached and refreshed by :mod:`.jwks`.

A token once verified is answered from memory until it expires or the signing keys change
(:mod:`.verified`): the same tokens come on every call, and verifying one costs more than the
rest of a small request.

The validated :class:`Caller` is also stored on ``request.state.caller``; handlers read it with
the :data:`CurrentCaller` alias.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

import jwt
from fastapi import Depends, Request
from fastapi.security import HTTPBearer

from dronecommon.auth.errors import (
    AuthenticationError,
    PermissionDeniedError,
    SigningKeysUnavailableError,
    http_error,
)
from dronecommon.auth.jwks import (
    ALGORITHMS,
    DEFAULT_JWKS_TIMEOUT,
    DEFAULT_REFETCH_INTERVAL,
    FileJwks,
    HttpJwks,
    JwksSource,
    SigningKeys,
)
from dronecommon.auth.verified import VerifiedTokens
from dronecommon.settings import AuthSettings

logger = logging.getLogger(__name__)

_BEARER_DESCRIPTION = (
    "A Microsoft Entra ID access token for this service (development issuer locally)."
)


class BearerCaller(HTTPBearer):
    """The authentication dependency: the ``HTTPBearer`` security scheme itself (so the API's
    document declares it), answering the request's :class:`Caller`.

    One dependency rather than a scheme and a dependency on it: FastAPI solves each dependency
    of every request, and this one sits on every protected route of every service.
    """

    def __init__(self, authenticate: Callable[[str | None], Awaitable[Caller]]) -> None:
        super().__init__(
            auto_error=False, scheme_name="HTTPBearer", description=_BEARER_DESCRIPTION
        )
        self._authenticate = authenticate

    async def __call__(self, request: Request) -> Caller:  # type: ignore[override]
        credentials = await super().__call__(request)
        caller = await self._authenticate(None if credentials is None else credentials.credentials)
        request.state.caller = caller
        return caller


CallerKind = Literal["service", "customer", "anonymous"]


@dataclass(frozen=True, slots=True)
class Caller:
    """The authenticated caller of a request.

    ``kind`` says which audience its token was for: ``service`` (this service's own audience:
    another service's identity), ``customer`` (the public API's audience: a customer, whose
    ``account_id`` and ``user_id`` come from the configured claims) or ``anonymous`` (auth off).
    """

    subject: str
    app_id: str | None = None
    object_id: str | None = None
    tenant_id: str | None = None
    roles: tuple[str, ...] = ()
    claims: Mapping[str, Any] = field(default_factory=dict)
    authenticated: bool = True
    kind: CallerKind = "service"
    account_id: str | None = None
    user_id: str | None = None
    operator: bool = False

    @classmethod
    def from_claims(
        cls,
        claims: Mapping[str, Any],
        *,
        kind: CallerKind = "service",
        account_claim: str = "tid",
        user_claim: str = "oid",
        operator_role: str = "Operator",
    ) -> Caller:
        """The caller a validated token describes (Entra v1 and v2 claim names)."""
        roles = claims.get("roles")
        role_list = tuple(str(role) for role in roles) if isinstance(roles, list) else ()
        customer = kind == "customer"
        return cls(
            subject=str(claims.get("sub", "")),
            app_id=_str_or_none(claims.get("azp") or claims.get("appid")),
            object_id=_str_or_none(claims.get("oid")),
            tenant_id=_str_or_none(claims.get("tid")),
            roles=role_list,
            claims=dict(claims),
            kind=kind,
            account_id=_str_or_none(claims.get(account_claim)) if customer else None,
            user_id=_str_or_none(claims.get(user_claim)) if customer else None,
            operator=customer and operator_role in role_list,
        )

    def has_role(self, role: str) -> bool:
        return role in self.roles

    @property
    def sees_everything(self) -> bool:
        """Every customer's data is this caller's business: a service (its route admitted it
        by role), an operator, or anyone when tokens are not checked."""
        return self.kind != "customer" or self.operator

    def owns(self, user_id: str, account_id: str) -> bool:
        """This customer is the owner ``(user_id, account_id)``."""
        return self.kind == "customer" and self.user_id == user_id and self.account_id == account_id

    def may_access(self, user_id: str, account_id: str) -> bool:
        """The caller may read and change what the owner ``(user_id, account_id)`` owns."""
        return self.sees_everything or self.owns(user_id, account_id)


ANONYMOUS = Caller(subject="anonymous", authenticated=False, kind="anonymous")


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


# --- Validation --------------------------------------------------------------------------------


def _required(settings: AuthSettings) -> str:
    missing = [] if settings.issuer else ["issuer"]
    if not settings.audience and not settings.public_audience:
        missing.append("audience or auth.public_audience")
    if not settings.jwks_url and not settings.jwks_file:
        missing.append("jwks_url or auth.jwks_file")
    if missing:
        raise ValueError(
            f"auth.enabled is true but auth.{', auth.'.join(missing)} not set "
            "(or switch tokens off explicitly with auth.enabled=false, never in production)"
        )
    assert settings.issuer is not None
    return settings.issuer


ENTRA_V1_ISSUER = "https://sts.windows.net/"


def _v1_detail(token: str) -> str | None:
    """What to say when a (signature-checked) token is a Microsoft Entra ID v1 token."""
    try:
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        return None
    issuer = str(claims.get("iss", ""))
    if claims.get("ver") != "1.0" and not issuer.startswith(ENTRA_V1_ISSUER):
        return None
    return (
        f"the token is a Microsoft Entra ID v1 token (iss {issuer or '?'}, "
        f"ver {claims.get('ver', '?')}): this API accepts v2 tokens only "
        "(set requestedAccessTokenVersion to 2 in the API's app registration)"
    )


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
        self.issuer = _required(settings)
        self.audiences = [a for a in (settings.audience, settings.public_audience) if a]
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
        self.verified: VerifiedTokens[Caller] = VerifiedTokens()

    async def authenticate(self, token: str) -> Caller:
        """The caller a token proves, or :class:`AuthenticationError`/
        :class:`PermissionDeniedError`/:class:`SigningKeysUnavailableError`."""
        known = self.verified.get(token, self.keys.fresh())
        if known is not None:
            return known
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
                audience=self.audiences,
                issuer=self.issuer,
                leeway=self.settings.leeway_seconds,
                options={"require": ["exp", "iss", "aud"]},
            )
        except jwt.ExpiredSignatureError as exc:
            raise AuthenticationError("the token has expired") from exc
        except jwt.ImmatureSignatureError as exc:
            raise AuthenticationError("the token is not valid yet") from exc
        except jwt.InvalidAudienceError as exc:
            detail = _v1_detail(token) or "the token is not meant for this service"
            raise AuthenticationError(detail) from exc
        except jwt.InvalidIssuerError as exc:
            detail = _v1_detail(token) or "the token comes from an untrusted issuer"
            raise AuthenticationError(detail) from exc
        except jwt.InvalidSignatureError as exc:
            raise AuthenticationError("the token's signature is not valid") from exc
        except jwt.MissingRequiredClaimError as exc:
            raise AuthenticationError(f"the token has no {exc.claim!r} claim") from exc
        except jwt.PyJWTError as exc:
            raise AuthenticationError("the token is not valid") from exc
        caller = Caller.from_claims(
            claims,
            kind=self._kind(claims.get("aud")),
            account_claim=self.settings.account_claim,
            user_claim=self.settings.user_claim,
            operator_role=self.settings.operator_role,
        )
        self.authorize(caller)
        self.verified.put(token, caller, claims.get("exp"), self.keys.fresh())
        return caller

    def _kind(self, audience: Any) -> CallerKind:
        """``service`` for this service's own audience, ``customer`` for the public API's."""
        audiences = {audience} if isinstance(audience, str) else set(audience or ())
        if self.settings.audience and self.settings.audience in audiences:
            return "service"
        return "customer"

    def authorize(self, caller: Caller) -> None:
        """Raise :class:`PermissionDeniedError` unless a service caller is an allowed one."""
        if caller.kind == "service" and self._allowed_callers:
            identities = {caller.app_id, caller.object_id} - {None}
            if not identities & self._allowed_callers:
                raise PermissionDeniedError("this caller is not allowed to call this service")

    async def answer(self, token: str | None) -> Caller:
        """The request's caller from its bearer token (None: none sent), or the HTTPException to
        answer (401/403/503): what :class:`BearerCaller` calls."""
        if token is None:
            raise http_error(AuthenticationError("a bearer token is required"), token_sent=False)
        try:
            return await self.authenticate(token)
        except (AuthenticationError, PermissionDeniedError, SigningKeysUnavailableError) as exc:
            logger.info("request refused: %s", exc)
            raise http_error(exc, token_sent=True) from exc


async def _anonymous(token: str | None) -> Caller:
    """Tokens switched off: every request is the anonymous caller, whatever it sends. The bearer
    scheme is still declared, so the API's document is the same as where tokens are checked."""
    return ANONYMOUS


def auth_dependency(
    settings: AuthSettings,
    *,
    jwks_timeout: float = DEFAULT_JWKS_TIMEOUT,
    refetch_interval: float = DEFAULT_REFETCH_INTERVAL,
    clock: Callable[[], float] = time.monotonic,
) -> BearerCaller:
    """The dependency that authenticates requests (anonymous when ``settings.enabled`` is false).

    Raises ``ValueError`` at once when auth is enabled without issuer, audience or a JWKS source.
    """
    if not settings.enabled:
        return BearerCaller(_anonymous)
    authenticator = Authenticator(
        settings, jwks_timeout=jwks_timeout, refetch_interval=refetch_interval, clock=clock
    )
    return BearerCaller(authenticator.answer)


def stored_caller(request: Request) -> Caller:
    """The caller the auth dependency stored for this request (a RuntimeError without one)."""
    caller = request.scope.get("state", {}).get("caller")
    if not isinstance(caller, Caller):
        raise RuntimeError("no caller: the auth dependency is not installed on this route")
    return caller


async def current_caller(request: Request) -> Caller:
    """:func:`stored_caller` as a dependency (a coroutine: FastAPI runs a plain function
    dependency in its thread pool, a thread hop on every request)."""
    return stored_caller(request)


CurrentCaller = Annotated[Caller, Depends(current_caller)]


async def caller_or_anonymous(request: Request) -> Caller:
    """The caller the auth dependency stored, or :data:`ANONYMOUS` where tokens are not checked."""
    caller = request.scope.get("state", {}).get("caller")
    return caller if isinstance(caller, Caller) else ANONYMOUS


AnyCaller = Annotated[Caller, Depends(caller_or_anonymous)]
