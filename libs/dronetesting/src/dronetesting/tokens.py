"""Pytest fixtures for authenticated tests: a development issuer in the test's temporary folder.

``dev_issuer`` gives a :class:`LocalIssuer`: it mints real signed tokens for the test audience and
carries matching :class:`~dronecommon.settings.AuthSettings` (enabled, the dev issuer, the JWKS
file), so a test builds its app with ``issuer.settings`` and sends ``issuer.headers()``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from dronecommon.auth.devissuer import DEFAULT_DEV_ISSUER, DevIssuer
from dronecommon.settings import AuthSettings

TEST_AUDIENCE = "dronedelivery-test"
TEST_PUBLIC_AUDIENCE = "dronedelivery-api-test"
TEST_CALLER = "test-client"


@dataclass
class LocalIssuer:
    """A development issuer saved in a folder, with the AuthSettings that trust it."""

    issuer: DevIssuer
    directory: Path
    key_file: Path
    jwks_file: Path
    audience: str = TEST_AUDIENCE

    @classmethod
    def create(cls, directory: Path) -> LocalIssuer:
        """A new development issuer with its key and JWKS saved in ``directory``."""
        issuer = DevIssuer.generate(DEFAULT_DEV_ISSUER)
        key_file, jwks_file = issuer.save(directory)
        return cls(issuer=issuer, directory=directory, key_file=key_file, jwks_file=jwks_file)

    @property
    def settings(self) -> AuthSettings:
        """Auth enabled, trusting this issuer's JWKS file for :attr:`audience`."""
        return self.settings_with()

    def settings_with(self, **overrides: Any) -> AuthSettings:
        """:attr:`settings` with some fields changed (``allowed_callers=[...]`` and so on)."""
        values: dict[str, Any] = {
            "audience": self.audience,
            "public_audience": TEST_PUBLIC_AUDIENCE,
            "jwks_file": self.jwks_file,
        }
        values.update(overrides)
        return self.issuer.auth_settings(**values)

    def mint(self, **claims: Any) -> str:
        """A valid token for the test audience from caller ``test-client``; ``claims`` override.

        Takes the keywords of :meth:`DevIssuer.mint` (``subject``, ``azp``, ``oid``, ``roles``,
        ``audience``, ``issuer``, ``lifetime``, ``issued_at``, ``not_before``, ``extra_claims``).
        """
        values: dict[str, Any] = {"audience": self.audience, "azp": TEST_CALLER}
        values.update(claims)
        return self.issuer.mint(**values)

    def headers(self, **claims: Any) -> dict[str, str]:
        """``{"Authorization": "Bearer <token>"}`` for :meth:`mint`."""
        return {"Authorization": f"Bearer {self.mint(**claims)}"}

    def service(self, *roles: str, caller: str = TEST_CALLER, **claims: Any) -> dict[str, str]:
        """Headers with a service token for the test audience holding ``roles``."""
        return self.headers(roles=roles, azp=caller, oid=caller, subject=caller, **claims)

    def customer(
        self,
        account: str = "contoso",
        user: str = "myowner",
        *,
        roles: tuple[str, ...] = (),
        **claims: Any,
    ) -> dict[str, str]:
        """Headers with a customer's token for the public test audience (``tid``, ``oid``)."""
        values: dict[str, Any] = {"audience": TEST_PUBLIC_AUDIENCE, "roles": roles}
        values.update(claims)
        token = self.issuer.mint_customer(account=account, user=user, **values)
        return {"Authorization": f"Bearer {token}"}

    def rotate(self, *, keep_previous: bool = True) -> None:
        """A new signing key, saved with the JWKS (the old key stays trusted if asked)."""
        self.issuer.rotate(keep_previous=keep_previous)
        self.issuer.save(self.directory)


@pytest.fixture
def dev_issuer(tmp_path: Path) -> LocalIssuer:
    """A development issuer with its key and JWKS in the test's temporary folder."""
    return LocalIssuer.create(tmp_path / "dev-issuer")
