"""Who the browser's user is, and the tokens the web app sends for them.

- :class:`DevSignIn` (development only): the person picks an account, a user and whether they
  are an operator; the app mints the customer token with the development issuer's key, shaped as
  Entra issues user tokens for the public API (``aud`` the public API, account ``tid``, user
  ``oid``, ``roles``). Never available in production (the settings refuse it).
- :func:`user_from_token`: the signed-in :class:`~webapp.sessions.User` a token describes (its
  claims read without checking the signature: the token came straight from the issuer to this
  app; the services it is sent to check it).
- :func:`service_token_provider`: the web app's own tokens for the services whose data it reads
  with a role (the fleet: ``Fleet.Control``; notifications: ``Notifications.Read``).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import jwt
from azure.core.credentials_async import AsyncTokenCredential

from dronecommon.auth.credentials import BearerTokenProvider, TokenProvider
from dronecommon.auth.devissuer import (
    DEFAULT_DEV_ISSUER,
    PUBLIC_AUDIENCE,
    DevIssuer,
    DevTokenProvider,
    audience_from_scope,
)
from dronecommon.auth.roles import OPERATOR

from .sessions import User
from .settings import DEV_CLIENT, WebappAuthSettings, WebappSettings

logger = logging.getLogger("webapp.identity")

# The claims of a user token (Entra v2): account, user, display name, roles.
ACCOUNT_CLAIM = "tid"
USER_CLAIM = "oid"


def user_from_token(token: str) -> tuple[User, float]:
    """The user a token names and when it expires (epoch seconds)."""
    claims: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    account = str(claims.get(ACCOUNT_CLAIM) or "")
    user = str(claims.get(USER_CLAIM) or claims.get("sub") or "")
    if not account or not user:
        raise ValueError("the token names no account (tid) or no user (oid)")
    name = str(claims.get("name") or claims.get("preferred_username") or user)
    roles = claims.get("roles")
    role_list = [str(role) for role in roles] if isinstance(roles, list) else []
    expires = float(claims.get("exp") or time.time())
    return User(account=account, user=user, name=name, roles=role_list), expires


class DevSignIn:
    """Customer tokens minted by the development issuer."""

    def __init__(self, issuer: DevIssuer, *, audience: str, lifetime: int) -> None:
        self.issuer = issuer
        self.audience = audience
        self.lifetime = lifetime

    @classmethod
    def from_settings(cls, settings: WebappSettings) -> DevSignIn:
        key_file = Path(str(settings.auth.dev_signing_key_file))
        issuer_name = settings.auth.issuer or DEFAULT_DEV_ISSUER
        if key_file.exists():
            issuer = DevIssuer.load(key_file, issuer_name)
        else:
            # Development only: the issuer's key is made on first use, as the stack does.
            issuer = DevIssuer.load_or_create(key_file.parent, issuer_name)
            logger.info("made the development issuer's key in %s", key_file.parent)
        return cls(
            issuer,
            audience=settings.auth.public_audience or PUBLIC_AUDIENCE,
            lifetime=settings.signin.token_lifetime,
        )

    def mint(self, *, account: str, user: str, operator: bool) -> str:
        return self.issuer.mint_customer(
            account=account,
            user=user,
            audience=self.audience,
            roles=[OPERATOR] if operator else [],
            client=DEV_CLIENT,
            lifetime=self.lifetime,
            extra_claims={"name": user},
        )


def service_token_provider(
    auth: WebappAuthSettings,
    credential: AsyncTokenCredential | None,
    target: str,
) -> TokenProvider | None:
    """The web app's own token for ``target`` (None: calls go without one)."""
    scope = auth.outbound_scopes.get(target)
    if not scope:
        return None
    if auth.dev_signing_key_file:
        issuer = DevIssuer.load(auth.dev_signing_key_file, auth.issuer or DEFAULT_DEV_ISSUER)
        return DevTokenProvider(
            issuer,
            audience=audience_from_scope(scope),
            caller="webapp",
            roles=auth.dev_roles.get(target, ()),
        )
    if credential is None:
        raise ValueError(f"auth.outbound_scopes.{target} is set but no credential was given")
    return BearerTokenProvider(credential, scope)
