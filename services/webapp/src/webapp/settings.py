"""The web app's settings: ``WEBAPP_*`` environment variables.

Sign-in is the development issuer (``WEBAPP_SIGNIN__MODE=development``: pick an account and a
user, the app mints the token with the issuer's key, never in production) or Microsoft Entra ID
(``entra``: the authorization code flow with PKCE through MSAL, as a confidential client that
proves itself with the workload identity's federated token, or a secret where there is none).
"""

from __future__ import annotations

import os
from typing import ClassVar, Literal, Self

from pydantic import BaseModel, Field, SecretStr, model_validator
from pydantic_settings import SettingsConfigDict

from dronecommon.area import ServiceArea
from dronecommon.auth.devissuer import PUBLIC_AUDIENCE
from dronecommon.auth.roles import FLEET_CONTROL, NOTIFICATIONS_READ
from dronecommon.settings import AuthSettings, RedisSettings, ServiceSettings

# The client application the development sign-in issues customer tokens to (Entra: ``azp``, the
# web app's own app registration).
DEV_CLIENT = "dronedelivery-webapp"


class WebappAuthSettings(AuthSettings):
    """Tokens the web app sends: customers' (for the public API audience) and its own.

    The web app checks no bearer tokens itself (its pages are for browsers with a session); it
    sends the signed-in user's token (customer: the public API's audience, ``public_audience``)
    and, to the services whose data no customer may read, its own token: ``Fleet.Control`` on
    the simulator (the fleet, for ``/ops``) and ``Notifications.Read`` on the notifier (a
    delivery's notifications, once the delivery service has shown the user owns it). In Azure
    those are app role assignments of the web app's identity; locally the development issuer
    puts the same roles in the tokens it mints (``dev_roles``).
    """

    public_audience: str | None = PUBLIC_AUDIENCE
    dev_roles: dict[str, list[str]] = Field(
        default_factory=lambda: {
            "simulator": [FLEET_CONTROL],
            "notifier": [NOTIFICATIONS_READ],
        }
    )


class SessionSettings(BaseModel):
    """The browser's session: a signed cookie naming a session kept in Redis."""

    cookie_name: str = Field(default="dronedelivery_session", pattern=r"^[A-Za-z0-9_-]{1,64}$")
    # Signs the cookie. Required in production (every replica the same); in development a random
    # key per process (a restart signs everyone out).
    secret_key: SecretStr | None = None
    # A session ends after this long without a request, and in any case after max_age.
    idle_seconds: int = Field(default=8 * 3600, ge=60)
    max_age_seconds: int = Field(default=24 * 3600, ge=60)
    # Secure cookies: None follows the request's scheme (https behind the gateway).
    secure: bool | None = None
    key_prefix: str = Field(default="webapp", min_length=1, pattern=r"^[^{}\s]+$")


def _federated_token_file() -> str | None:
    return os.environ.get("AZURE_FEDERATED_TOKEN_FILE") or None


class EntraSettings(BaseModel):
    """The web app's Microsoft Entra app registration (a confidential client)."""

    tenant_id: str | None = Field(
        default_factory=lambda: os.environ.get("AZURE_TENANT_ID") or None,
        description="default: AZURE_TENANT_ID",
    )
    client_id: str | None = Field(
        default_factory=lambda: os.environ.get("AZURE_CLIENT_ID") or None,
        description="default: AZURE_CLIENT_ID",
    )
    authority_host: str = "https://login.microsoftonline.com"
    # The delegated permission of the public API the app asks for (``api://<id>/Deliveries.Manage``).
    api_scopes: list[str] = Field(default_factory=list)
    # Keyless: a client assertion read from this file (the workload identity's federated token);
    # a secret only where no federated token exists.
    federated_token_file: str | None = Field(
        default_factory=_federated_token_file, description="default: AZURE_FEDERATED_TOKEN_FILE"
    )
    client_secret: SecretStr | None = None

    @property
    def authority(self) -> str:
        return f"{self.authority_host.rstrip('/')}/{self.tenant_id}"


class SignInSettings(BaseModel):
    mode: Literal["development", "entra"] = "development"
    # Development: the accounts offered on the sign-in page (any other may be typed).
    accounts: list[str] = Field(default_factory=lambda: ["contoso", "fabrikam"])
    token_lifetime: int = Field(default=3600, ge=60, le=24 * 3600)
    entra: EntraSettings = Field(default_factory=EntraSettings)


class WebappSettings(ServiceSettings):
    """``WEBAPP_PORT``, ``WEBAPP_SIGNIN__MODE``, ``WEBAPP_DELIVERY_URL``, ``WEBAPP_TILES_URL``..."""

    model_config = SettingsConfigDict(
        env_prefix="WEBAPP_", env_nested_delimiter="__", extra="ignore", case_sensitive=False
    )

    service_name: ClassVar[str] = "webapp"

    port: int = Field(default=8000, ge=0, le=65535)
    auth: WebappAuthSettings = Field(default_factory=WebappAuthSettings)
    # Sessions (and nothing else) live in Redis.
    redis: RedisSettings = Field(default_factory=RedisSettings)
    session: SessionSettings = Field(default_factory=SessionSettings)
    signin: SignInSettings = Field(default_factory=SignInSettings)

    # The services it calls for the browser.
    ingestion_url: str = "http://127.0.0.1:8001"
    delivery_url: str = "http://127.0.0.1:8002"
    workflow_url: str = "http://127.0.0.1:8005"
    simulator_url: str = "http://127.0.0.1:8006"
    notifier_url: str = "http://127.0.0.1:8007"
    # Readiness: how long a called service's /healthz may take.
    downstream_health_timeout: float = Field(default=1.0, gt=0)

    # Maps: the service area (the same settings as every service's, WEBAPP_SERVICE_AREA__*), and
    # a tile layer only when a tiles URL is configured ("https://tile.example/{z}/{x}/{y}.png");
    # without it maps draw on a plain background.
    service_area: ServiceArea = Field(default_factory=ServiceArea)
    tiles_url: str | None = None
    tiles_attribution: str = ""
    # The track pages say "tracking lost" when the drone's latest fix is older than this
    # (seconds; the delivery service's DELIVERY_LIVE__STALE_AFTER, so both agree).
    tracking_stale_seconds: float = Field(default=30.0, gt=0, le=3600)
    # My deliveries refresh this often (seconds); the track page streams.
    list_refresh_seconds: float = Field(default=5.0, ge=1, le=300)

    @property
    def development(self) -> bool:
        return self.environment == "development"

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.signin.mode == "development":
            if self.environment == "production":
                raise ValueError(
                    "WEBAPP_SIGNIN__MODE=development is refused in production: "
                    "sign-in there is Microsoft Entra ID (WEBAPP_SIGNIN__MODE=entra)"
                )
            if not self.auth.dev_signing_key_file:
                raise ValueError(
                    "WEBAPP_SIGNIN__MODE=development needs WEBAPP_AUTH__DEV_SIGNING_KEY_FILE "
                    "(the development issuer's key, made there on first use)"
                )
        else:
            entra = self.signin.entra
            missing = [
                name
                for name, value in (("TENANT_ID", entra.tenant_id), ("CLIENT_ID", entra.client_id))
                if not value
            ]
            if not entra.api_scopes:
                missing.append("API_SCOPES")
            if not entra.federated_token_file and entra.client_secret is None:
                missing.append("FEDERATED_TOKEN_FILE or WEBAPP_SIGNIN__ENTRA__CLIENT_SECRET")
            if missing:
                raise ValueError(
                    "WEBAPP_SIGNIN__MODE=entra needs "
                    + ", ".join(f"WEBAPP_SIGNIN__ENTRA__{name}" for name in missing)
                )
        if self.environment == "production" and self.session.secret_key is None:
            raise ValueError(
                "WEBAPP_SESSION__SECRET_KEY is required in production (every replica signs "
                "cookies with it)"
            )
        return self
