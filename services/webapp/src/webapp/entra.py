"""Microsoft Entra ID sign-in: the authorization code flow with PKCE, through MSAL.

The web app is a confidential client (its own app registration). It proves itself without a
stored secret where it can: in AKS the workload identity webhook projects a federated token
(``AZURE_FEDERATED_TOKEN_FILE``), which MSAL sends as the client assertion — the app
registration trusts the cluster's OIDC issuer for the web app's service account (a federated
identity credential), so no secret exists anywhere. The file is read on every token request (the
kubelet renews it). Elsewhere a client secret may stand in.

MSAL is synchronous (``requests``): its calls run in a worker thread. Per sign-in:

1. :meth:`EntraSignIn.begin` — ``initiate_auth_code_flow`` (state, nonce, PKCE ``S256``
   verifier) for the public API's delegated scope; the flow is kept in the session, the browser
   goes to Entra;
2. :meth:`EntraSignIn.complete` — ``acquire_token_by_auth_code_flow`` with the query Entra
   redirected back with: MSAL checks the state and the ID token's nonce, and redeems the code
   with the verifier; the session keeps MSAL's token cache (the refresh token);
3. :meth:`EntraSignIn.refresh` — ``acquire_token_silent`` from that cache when the access token
   is near its expiry.

Discovery documents are cached for the process (``http_cache``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import msal

from .settings import EntraSettings


class SignInFailedError(Exception):
    """Entra refused the sign-in, or the answer did not fit the flow started."""


def federated_assertion(token_file: str) -> Any:
    """A callable MSAL calls for each token request: the projected federated token, fresh."""

    def read() -> str:
        return Path(token_file).read_text(encoding="utf-8").strip()

    return read


class EntraSignIn:
    def __init__(self, settings: EntraSettings, *, http_client: Any = None) -> None:
        self.settings = settings
        self._http_client = http_client
        self._http_cache: dict[Any, Any] = {}

    def _credential(self) -> Any:
        if self.settings.federated_token_file:
            return {"client_assertion": federated_assertion(self.settings.federated_token_file)}
        assert self.settings.client_secret is not None  # the settings require one or the other
        return self.settings.client_secret.get_secret_value()

    def _app(
        self, cache: msal.SerializableTokenCache | None = None
    ) -> msal.ConfidentialClientApplication:
        options: dict[str, Any] = {"http_cache": self._http_cache}
        if self._http_client is not None:
            options["http_client"] = self._http_client
        return msal.ConfidentialClientApplication(
            self.settings.client_id,
            authority=self.settings.authority,
            client_credential=self._credential(),
            token_cache=cache,
            **options,
        )

    async def begin(self, redirect_uri: str) -> dict[str, Any]:
        """A new flow (kept in the session); its ``auth_uri`` is where the browser goes."""

        def start() -> dict[str, Any]:
            flow: dict[str, Any] = self._app().initiate_auth_code_flow(
                self.settings.api_scopes, redirect_uri=redirect_uri, response_mode="query"
            )
            return flow

        return await asyncio.to_thread(start)

    async def complete(
        self, flow: dict[str, Any], answer: Mapping[str, str], cache_state: str | None
    ) -> tuple[str, str]:
        """The access token for the public API and the serialised token cache."""

        def redeem() -> tuple[str, str]:
            cache = msal.SerializableTokenCache()
            if cache_state:
                cache.deserialize(cache_state)
            try:
                result = self._app(cache).acquire_token_by_auth_code_flow(flow, dict(answer))
            except ValueError as exc:  # state mismatch, a flow used twice
                raise SignInFailedError(str(exc)) from exc
            if "access_token" not in result:
                raise SignInFailedError(
                    str(result.get("error_description") or result.get("error") or result)
                )
            return str(result["access_token"]), cache.serialize()

        return await asyncio.to_thread(redeem)

    async def refresh(self, cache_state: str) -> tuple[str, str] | None:
        """A fresh access token from the cached refresh token (None: sign in again)."""

        def silent() -> tuple[str, str] | None:
            cache = msal.SerializableTokenCache()
            cache.deserialize(cache_state)
            app = self._app(cache)
            accounts = app.get_accounts()
            if not accounts:
                return None
            result = app.acquire_token_silent(self.settings.api_scopes, account=accounts[0])
            if not result or "access_token" not in result:
                return None
            return str(result["access_token"]), cache.serialize()

        return await asyncio.to_thread(silent)

    def logout_url(self, post_logout_redirect_uri: str) -> str:
        """Entra's end-session endpoint, coming back to ``post_logout_redirect_uri``."""
        query = urlencode({"post_logout_redirect_uri": post_logout_redirect_uri})
        return f"{self.settings.authority}/oauth2/v2.0/logout?{query}"
