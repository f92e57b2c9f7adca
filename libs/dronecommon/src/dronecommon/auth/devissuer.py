"""A development token issuer: a local signing key, its JWKS, and tokens minted on demand.

Locally and in tests there is no Microsoft Entra ID, yet the services should run with inbound
authentication switched on, exactly as in Azure. The development issuer stands in for Entra:

- :meth:`DevIssuer.generate` makes an RSA (RS256, the Entra default) or P-256 (ES256) key whose
  ``kid`` is its RFC 7638 thumbprint, so the same key always has the same ``kid``;
- :meth:`DevIssuer.save` writes the private key as PKCS#8 PEM with mode ``0600`` and the public
  JWKS next to it; services validate against that file (``AUTH__JWKS_FILE``) or any HTTP server
  serving it (``AUTH__JWKS_URL``);
- :meth:`DevIssuer.mint` signs tokens shaped like Entra v2 access tokens (``sub``, ``azp``,
  ``oid``, ``roles``, ``iss``, ``aud``, ``iat``/``nbf``/``exp``), with every field choosable so
  tests can mint wrong audiences, expired tokens and the like; :meth:`DevIssuer.mint_customer`
  mints a customer's token for the public API (account ``tid``, user ``oid``).

:class:`DevTokenProvider` mints outbound tokens for a service when ``AUTH__DEV_SIGNING_KEY_FILE`` is
set, with the app roles ``AUTH__DEV_ROLES`` gives per called service, so service-to-service calls
carry a bearer token locally too. :data:`PUBLIC_AUDIENCE` and :data:`SERVICE_AUDIENCES` name the
local system's APIs. ``python -m dronecommon.auth.devcli`` is the command line (``make token``).
Nothing here is for production.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Self

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from dronecommon.settings import AuthSettings

DEFAULT_DEV_ISSUER = "http://localhost/dev-issuer"
KEY_FILE_NAME = "signing-key.pem"
JWKS_FILE_NAME = "jwks.json"

# The audiences of the local system, one per API (Entra: each API's application id). Customers
# call the public API; each internal API is called by the services holding its app roles.
PUBLIC_AUDIENCE = "dronedelivery-api"
SERVICE_AUDIENCES = {
    "delivery": "delivery-internal",
    "package": "package",
    "dronescheduler": "dronescheduler",
    "simulator": "simulator",
    "notifier": "notifier",
}
# The account and user a development customer token names by default (the sample's owner).
DEFAULT_ACCOUNT = "contoso"
DEFAULT_USER = "myowner"
# The client application customers' tokens are issued to locally (Entra: ``azp``).
DEV_CLIENT = "dronedelivery-dev-client"

Algorithm = Literal["RS256", "ES256"]
SigningKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def public_jwk(key: SigningKey) -> dict[str, Any]:
    """The public JWK of ``key`` with ``kid`` (RFC 7638 thumbprint), ``alg`` and ``use``."""
    if isinstance(key, rsa.RSAPrivateKey):
        jwk: dict[str, Any] = RSAAlgorithm.to_jwk(key.public_key(), as_dict=True)
        required: tuple[str, ...] = ("e", "kty", "n")
        alg = "RS256"
    else:
        jwk = ECAlgorithm.to_jwk(key.public_key(), as_dict=True)
        required = ("crv", "kty", "x", "y")
        alg = "ES256"
    canonical = json.dumps({name: jwk[name] for name in required}, separators=(",", ":"))
    jwk["kid"] = _b64url(hashlib.sha256(canonical.encode("utf-8")).digest())
    jwk["alg"] = alg
    jwk["use"] = "sig"
    return jwk


@dataclass
class DevIssuer:
    """A signing key and the issuer name it mints tokens as."""

    key: SigningKey
    issuer: str = DEFAULT_DEV_ISSUER
    # Retired public keys still published in the JWKS (key rotation with overlap).
    previous_keys: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def generate(cls, issuer: str = DEFAULT_DEV_ISSUER, *, algorithm: Algorithm = "RS256") -> Self:
        """A new issuer with a fresh key (RSA 2048 for RS256, P-256 for ES256)."""
        key: SigningKey
        if algorithm == "RS256":
            key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        else:
            key = ec.generate_private_key(ec.SECP256R1())
        return cls(key=key, issuer=issuer)

    @classmethod
    def load(cls, key_file: str | Path, issuer: str = DEFAULT_DEV_ISSUER) -> Self:
        """The issuer whose private key is the PEM file ``key_file``."""
        key = serialization.load_pem_private_key(Path(key_file).read_bytes(), password=None)
        if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
            raise ValueError(f"{key_file}: expected an RSA or EC private key")
        return cls(key=key, issuer=issuer)

    @classmethod
    def load_or_create(
        cls,
        directory: str | Path,
        issuer: str = DEFAULT_DEV_ISSUER,
        *,
        algorithm: Algorithm = "RS256",
    ) -> Self:
        """The issuer kept in ``directory``, creating its key and JWKS on first use."""
        folder = Path(directory)
        if (folder / KEY_FILE_NAME).exists():
            found = cls.load(folder / KEY_FILE_NAME, issuer)
            found.save(folder)  # keeps the JWKS in step with the key
            return found
        created = cls.generate(issuer, algorithm=algorithm)
        created.save(folder)
        return created

    @property
    def algorithm(self) -> Algorithm:
        return "RS256" if isinstance(self.key, rsa.RSAPrivateKey) else "ES256"

    @property
    def kid(self) -> str:
        return str(public_jwk(self.key)["kid"])

    def jwks(self) -> dict[str, Any]:
        """The public JWKS: the current key first, then any retired keys still trusted."""
        return {"keys": [public_jwk(self.key), *self.previous_keys]}

    def rotate(self, *, keep_previous: bool = True) -> None:
        """Replace the signing key; the old public key stays in the JWKS when ``keep_previous``."""
        old = public_jwk(self.key)
        self.key = type(self).generate(self.issuer, algorithm=self.algorithm).key
        self.previous_keys = [old, *self.previous_keys] if keep_previous else []

    def save(self, directory: str | Path) -> tuple[Path, Path]:
        """Write ``signing-key.pem`` (mode 0600) and ``jwks.json``; return both paths."""
        folder = Path(directory)
        folder.mkdir(parents=True, exist_ok=True)
        key_file = folder / KEY_FILE_NAME
        pem = self.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        # Created with 0600 from the start, so the key is never readable by others.
        descriptor = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(pem)
        key_file.chmod(0o600)
        jwks_file = self.write_jwks(folder / JWKS_FILE_NAME)
        return key_file, jwks_file

    def write_jwks(self, path: str | Path) -> Path:
        """Write the public JWKS to ``path`` atomically (readers never see half a file)."""
        target = Path(path)
        temporary = target.with_name(f".{target.name}.{uuid.uuid4().hex}")
        temporary.write_text(json.dumps(self.jwks(), indent=2) + "\n", encoding="utf-8")
        temporary.replace(target)
        return target

    def mint(
        self,
        *,
        audience: str | list[str],
        subject: str = "dev-user",
        azp: str | None = None,
        oid: str | None = None,
        roles: Iterable[str] = (),
        issuer: str | None = None,
        lifetime: float = 3600.0,
        issued_at: float | None = None,
        not_before: float | None = None,
        extra_claims: Mapping[str, Any] | None = None,
        kid: str | None = None,
    ) -> str:
        """A signed token shaped like an Entra v2 access token.

        ``issued_at`` defaults to now, ``not_before`` to ``issued_at`` and the expiry is
        ``issued_at + lifetime`` (a negative lifetime mints an expired token). ``kid`` overrides
        the header's key id (to test unknown keys).
        """
        now = time.time() if issued_at is None else issued_at
        claims: dict[str, Any] = {
            "iss": self.issuer if issuer is None else issuer,
            "aud": audience,
            "sub": subject,
            "iat": int(now),
            "nbf": int(now if not_before is None else not_before),
            "exp": int(now + lifetime),
            "jti": uuid.uuid4().hex,
            "ver": "2.0",
        }
        if azp is not None:
            claims["azp"] = azp
        if oid is not None:
            claims["oid"] = oid
        role_list = list(roles)
        if role_list:
            claims["roles"] = role_list
        claims.update(extra_claims or {})
        headers = {"kid": self.kid if kid is None else kid, "typ": "JWT"}
        return jwt.encode(claims, self.key, algorithm=self.algorithm, headers=headers)

    def mint_customer(
        self,
        *,
        account: str = DEFAULT_ACCOUNT,
        user: str = DEFAULT_USER,
        audience: str = PUBLIC_AUDIENCE,
        roles: Iterable[str] = (),
        client: str = DEV_CLIENT,
        **options: Any,
    ) -> str:
        """A customer's token for the public API: account ``tid``, user ``oid`` (and ``sub``),
        issued to the client application ``client`` (``azp``), as Entra issues user tokens.

        ``options`` are the other keywords of :meth:`mint` (``lifetime``, ``extra_claims``...).
        """
        extra = {"tid": account, "scp": "Deliveries.Manage", **options.pop("extra_claims", {})}
        return self.mint(
            audience=audience,
            subject=user,
            azp=client,
            oid=user,
            roles=roles,
            extra_claims=extra,
            **options,
        )

    def auth_settings(
        self, *, audience: str, jwks_file: str | Path | None = None, **overrides: Any
    ) -> AuthSettings:
        """AuthSettings that accept this issuer's tokens for ``audience``."""
        values: dict[str, Any] = {
            "enabled": True,
            "issuer": self.issuer,
            "audience": audience,
            "jwks_file": str(jwks_file) if jwks_file is not None else None,
        }
        values.update(overrides)
        return AuthSettings(**values)


def audience_from_scope(scope: str) -> str:
    """The audience a v2 token for ``scope`` carries: the application id.

    ``api://<app-id>/.default`` -> ``<app-id>`` (Entra puts the application id, not the
    application id URI, in ``aud`` of v2 tokens); any other scope loses only ``/.default``.
    """
    resource = scope.removesuffix("/.default")
    return resource.removeprefix("api://") if resource.startswith("api://") else resource


class DevTokenProvider:
    """Outbound bearer tokens minted by the development issuer (local runs only).

    Tokens are cached and re-minted a minute before they expire, like the Entra provider.
    """

    def __init__(
        self,
        issuer: DevIssuer,
        *,
        audience: str,
        caller: str,
        roles: Iterable[str] = (),
        lifetime: float = 3600.0,
    ) -> None:
        self._issuer = issuer
        self._audience = audience
        self._caller = caller
        self._roles = tuple(roles)
        self._lifetime = lifetime
        self._token: str | None = None
        self._expires_at = 0.0

    async def token(self) -> str:
        now = time.time()
        if self._token is None or now >= self._expires_at - 60.0:
            self._token = self._issuer.mint(
                audience=self._audience,
                subject=self._caller,
                azp=self._caller,
                oid=self._caller,
                roles=self._roles,
                issued_at=now,
                lifetime=self._lifetime,
            )
            self._expires_at = now + self._lifetime
        return self._token

    async def close(self) -> None:
        """Nothing to release; present so every token provider closes the same way."""
