"""Settings shared by every service.

Each service subclasses :class:`ServiceSettings` with its own environment prefix and adds the
sub-models it needs (``redis: RedisSettings``, ``mongo: MongoSettings``, ``queue: QueueSettings``).
Nested values come from ``PREFIX_SECTION__FIELD`` variables, for example
``DELIVERY_REDIS__URL=redis://cache:6379/0``.

:func:`load_settings` turns pydantic's validation error into one that names the environment
variable to set, so a misconfigured container fails fast with an actionable message.
"""

from __future__ import annotations

import ipaddress
import os
from typing import Any, ClassVar, Literal, Self, TypeVar

from pydantic import (
    BaseModel,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict


def _env(name: str) -> str | None:
    value = os.environ.get(name)
    return value or None


class RedisSettings(BaseModel):
    """A Redis (or Azure Managed Redis) connection."""

    url: str = "redis://127.0.0.1:6379/0"
    # Microsoft Entra authentication (Azure Managed Redis with access keys disabled): the password
    # is a token from the workload credential and ``username`` the identity's object id.
    use_entra_id: bool = False
    username: str | None = None
    socket_timeout: float = Field(default=2.0, gt=0)
    max_connections: int = Field(default=200, ge=1)


class MongoSettings(BaseModel):
    """A MongoDB wire-protocol connection (Azure Cosmos DB for MongoDB in production)."""

    url: str = "mongodb://127.0.0.1:27017"
    database: str = "drones"
    # MONGODB-OIDC with the Azure provider (workload identity); ``oidc_resource`` is the
    # application id URI the token is requested for.
    use_oidc: bool = False
    oidc_resource: str | None = None
    server_selection_timeout: float = Field(default=3.0, gt=0)
    max_pool_size: int = Field(default=100, ge=1)


class QueueSettings(BaseModel):
    """The delivery-request queue: Redis Streams locally, Azure Service Bus in Azure."""

    transport: Literal["redis", "servicebus"] = "redis"
    name: str = "deliveryrequests"
    # Redis Streams transport; empty means "use the service's redis url".
    redis_url: str | None = None
    consumer_group: str = "workflow"
    # Azure Service Bus: either a connection string (the emulator) or a namespace reached with the
    # workload identity credential.
    servicebus_connection_string: SecretStr | None = None
    servicebus_namespace: str | None = None
    # Receiving.
    max_concurrency: int = Field(default=32, ge=1)
    prefetch: int = Field(default=64, ge=0)
    lock_duration: float = Field(default=60.0, gt=0)
    max_delivery_count: int = Field(default=10, ge=1)
    receive_wait: float = Field(default=1.0, gt=0)
    readiness_timeout: float = Field(default=2.0, gt=0)


class TelemetryStreamSettings(BaseModel):
    """The drone telemetry stream (fixes): Redis Streams locally, Azure Event Hubs in Azure.

    ``<PREFIX>TELEMETRY_STREAM__TRANSPORT=redis|eventhubs`` picks the transport; see
    :mod:`dronecommon.fixes`.
    """

    transport: Literal["redis", "eventhubs"] = "redis"
    # Consumers: the consumer group of the consuming service (one per service).
    consumer_group: str = Field(default="telemetry", min_length=1, max_length=64)
    # A new group (Redis) or a partition without a checkpoint (Event Hubs) starts at the newest
    # fix when true (old telemetry is stale), at the oldest one kept when false.
    start_at_latest: bool = True
    # Fixes handed to a consumer's handler at once (at most).
    max_batch: int = Field(default=500, ge=1, le=10_000)
    # How long a consumer waits for new fixes before looping (seconds).
    receive_wait: float = Field(default=1.0, gt=0)
    readiness_timeout: float = Field(default=2.0, gt=0)
    # Redis Streams: the stream, its approximate length cap in entries, fixes per entry, and how
    # long a fix read by a dead consumer stays pending before another consumer takes it over.
    redis_url: str | None = None
    stream: str = Field(default="telemetry:fixes", min_length=1)
    maxlen: int = Field(default=100_000, ge=100)
    fixes_per_entry: int = Field(default=100, ge=1, le=1000)
    claim_idle: float = Field(default=30.0, gt=0)
    # Azure Event Hubs: the namespace (``<name>.servicebus.windows.net``, workload identity) or a
    # connection string (the emulator), the hub, and the Blob Storage container for checkpoints.
    eventhubs_namespace: str | None = None
    eventhubs_connection_string: SecretStr | None = None
    eventhub_name: str = "telemetry"
    checkpoint_account_url: str | None = None
    checkpoint_container: str = "telemetry-checkpoints"


class TelemetrySettings(BaseModel):
    """OpenTelemetry export. Nothing is exported unless a destination is configured."""

    connection_string: SecretStr | None = Field(
        default_factory=lambda: _s(_env("APPLICATIONINSIGHTS_CONNECTION_STRING")),
        description="default: APPLICATIONINSIGHTS_CONNECTION_STRING",
    )
    otlp_endpoint: str | None = Field(
        default_factory=lambda: _env("OTEL_EXPORTER_OTLP_ENDPOINT"),
        description="default: OTEL_EXPORTER_OTLP_ENDPOINT",
    )
    enable_live_metrics: bool = False
    enable_statsbeat: bool = False
    disable_offline_storage: bool = True
    sampling_ratio: float = Field(default=1.0, ge=0.0, le=1.0)
    shutdown_timeout: float = Field(default=5.0, gt=0)
    instrument: bool = True


class AuthSettings(BaseModel):
    """Inbound bearer-token validation, the caller's identity, and outbound service tokens.

    Two kinds of tokens come in (both v2-shaped, from one issuer):

    - **service** tokens, for this service's own ``audience``: app-only tokens of the other
      services' identities, admitted on internal routes by their app roles (``roles`` claim);
    - **customer** tokens, for the public API's ``public_audience``: a signed-in user (or a
      business's own client), whose account and user are the ``account_claim`` and
      ``user_claim`` claims. Every service knows the public audience, so a customer token on an
      internal route is refused as such (403), never mistaken for a stranger's token.

    Auth is on unless switched off explicitly (``<PREFIX>AUTH__ENABLED=false``), which a
    service configured for production refuses (see :class:`ServiceSettings`).
    """

    enabled: bool = True
    issuer: str | None = None
    # This service's own audience (its application id in Entra: v2 tokens carry it as ``aud``).
    audience: str | None = None
    # The public API's audience (customer tokens), where this service serves or refuses them.
    public_audience: str | None = None
    # Where the signing keys come from: an OpenID ``jwks_uri`` or a local JWKS file (development).
    jwks_url: str | None = None
    jwks_file: str | None = None
    jwks_cache_seconds: float = Field(default=3600.0, gt=0)
    # Service callers allowed in: application ids (``azp``/``appid``) or object ids (``oid``);
    # empty = any service identity holding a role the route asks for.
    allowed_callers: list[str] = Field(default_factory=list)
    # The claims that name a customer's account and user (Entra v2: tenant id and object id).
    account_claim: str = Field(default="tid", min_length=1)
    user_claim: str = Field(default="oid", min_length=1)
    # The user role that reads and changes every customer's deliveries.
    operator_role: str = Field(default="Operator", min_length=1)
    leeway_seconds: float = Field(default=60.0, ge=0)
    # Outbound: the scope requested per called service (``api://<app-id>/.default``), by the
    # name the caller gives it (``package``, ``dronescheduler``, ``delivery``); none: no token.
    outbound_scopes: dict[str, str] = Field(default_factory=dict)
    # Development issuer: a local signing key that mints outbound tokens (never in production),
    # and the app roles those tokens carry per called service (Entra's app role assignments).
    dev_signing_key_file: str | None = None
    dev_roles: dict[str, list[str]] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _two_audiences(self) -> Self:
        if self.audience and self.audience == self.public_audience:
            raise ValueError(
                "auth.audience and auth.public_audience must differ: service tokens and "
                "customer tokens are told apart by their audience"
            )
        return self


class HttpClientSettings(BaseModel):
    """Defaults for outbound HTTP calls (``dronecommon.httpclient``)."""

    connect_timeout: float = Field(default=2.0, gt=0)
    read_timeout: float = Field(default=5.0, gt=0)
    max_connections: int = Field(default=100, ge=1)
    retries: int = Field(default=3, ge=0)
    backoff_base: float = Field(default=0.1, ge=0)
    backoff_max: float = Field(default=2.0, ge=0)
    retry_after_max: float = Field(default=10.0, ge=0)
    breaker_failure_threshold: int = Field(default=5, ge=1)
    breaker_reset_timeout: float = Field(default=5.0, gt=0)
    # Limits on what a response may be; past them the call fails as transient ("protocol").
    max_response_body: int = Field(default=4 * 1024 * 1024, ge=0)  # bytes, after decoding
    max_header_line: int = Field(default=8190, ge=64)  # the status line
    max_header_field: int = Field(default=8190, ge=64)  # a header's name and its value
    max_headers: int = Field(default=128, ge=1)


class ServiceSettings(BaseSettings):
    """Base settings every service extends (set ``env_prefix`` in the subclass)."""

    model_config = SettingsConfigDict(
        env_prefix="",
        env_nested_delimiter="__",
        extra="ignore",
        case_sensitive=False,
    )

    service_name: ClassVar[str] = "service"

    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    # Whose X-Forwarded-For/-Proto are believed: the reverse proxies in front of the service
    # (comma-separated addresses or networks). Loopback by default (a local proxy); in AKS the
    # gateway's subnet. Headers from anyone else are ignored, so a client cannot pass for
    # another address or scheme.
    forwarded_allow_ips: str = "127.0.0.1,::1"
    environment: Literal["development", "test", "production"] = "development"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_json: bool = True
    telemetry: TelemetrySettings = Field(default_factory=TelemetrySettings)
    auth: AuthSettings = Field(default_factory=AuthSettings)
    http: HttpClientSettings = Field(default_factory=HttpClientSettings)

    @field_validator("forwarded_allow_ips")
    @classmethod
    def _forwarded_allow_ips(cls, value: str) -> str:
        return _proxies(value)

    @model_validator(mode="after")
    def _safe_in_production(self) -> Self:
        """Production never serves an open API, nor trusts the development issuer."""
        if self.environment == "production":
            problem = self.production_problem()
            if problem is not None:
                raise ValueError(problem)
        return self

    def production_problem(self) -> str | None:
        """Why these settings are unfit for production (None: they are fit), naming the
        variables to set: tokens switched off, what tokens need missing
        (:meth:`production_auth_problem`), or the development issuer configured."""
        if not self.auth.enabled:
            return (
                f"{self.env_var('auth', 'enabled')} is false but {self.env_var('environment')} "
                "is production: a production service always checks bearer tokens"
            )
        return self.production_auth_problem() or self.development_issuer_problem()

    def production_auth_problem(self) -> str | None:
        """What checking a token needs and is not set. Services whose own routes need no token
        (the workflow, health only) override it with what their outbound calls need instead."""
        auth = self.auth
        missing = [] if auth.issuer else [self.env_var("auth", "issuer")]
        if not auth.audience and not auth.public_audience:
            missing.append(
                f"{self.env_var('auth', 'audience')} or {self.env_var('auth', 'public_audience')}"
            )
        if not auth.jwks_url and not auth.jwks_file:
            missing.append(self.env_var("auth", "jwks_url"))
        if missing:
            return (
                f"{self.env_var('environment')} is production but {', '.join(missing)} not set: "
                "a production service cannot check a token without them"
            )
        return None

    def development_issuer_problem(self) -> str | None:
        """The development issuer's key is configured where it must never be."""
        if self.auth.dev_signing_key_file:
            return (
                f"{self.env_var('auth', 'dev_signing_key_file')} is set but "
                f"{self.env_var('environment')} is production: the development issuer is never "
                "used in production"
            )
        return None

    @classmethod
    def env_var(cls, *loc: str) -> str:
        """The environment variable of the field at ``loc`` (``("auth", "enabled")``)."""
        return env_name(cls, loc)


def _proxies(value: str) -> str:
    """Comma-separated IP addresses or networks (``*``, alone, trusts every peer)."""
    items = [item.strip() for item in value.split(",") if item.strip()]
    if items == ["*"]:
        return "*"
    for item in items:
        try:
            ipaddress.ip_network(item, strict=False)
        except ValueError:
            raise ValueError(
                f"{item!r} is not an IP address or network (give the proxies' addresses)"
            ) from None
    return ",".join(items)


def _s(value: str | None) -> SecretStr | None:
    return SecretStr(value) if value else None


class SettingsError(RuntimeError):
    """Configuration is missing or invalid; the message names the environment variables."""


S = TypeVar("S", bound=ServiceSettings)


def env_name(settings_cls: type[ServiceSettings], loc: tuple[int | str, ...]) -> str:
    """The environment variable that sets the field at ``loc``."""
    prefix = str(settings_cls.model_config.get("env_prefix", ""))
    delimiter = str(settings_cls.model_config.get("env_nested_delimiter") or "__")
    return (prefix + delimiter.join(str(part) for part in loc)).upper()


def load_settings(settings_cls: type[S], **overrides: Any) -> S:
    """Build settings from the environment, failing with the names of the variables to fix."""
    try:
        return settings_cls(**overrides)
    except ValidationError as exc:
        problems = [
            f"{env_name(settings_cls, tuple(error['loc']))}: {error['msg']}"
            if error["loc"]
            else str(error["msg"]).removeprefix("Value error, ")
            for error in exc.errors()
        ]
        raise SettingsError(
            f"invalid {settings_cls.service_name} configuration: " + "; ".join(problems)
        ) from exc
