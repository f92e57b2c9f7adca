"""The notifier's settings: ``NOTIFIER_*`` environment variables.

Channels: e-mail over SMTP (Mailpit locally) or Azure Communication Services Email; SMS to a local
sink (a Redis list, plus a JSON-lines file when ``NOTIFIER_SMS__SINK_FILE`` is set) or Azure
Communication Services SMS; webhooks (Standard Webhooks). The ACS clients sign in keyless with the
library's workload-identity credential.
"""

from __future__ import annotations

from typing import ClassVar, Literal, Self

from pydantic import BaseModel, Field, SecretStr, model_validator
from pydantic_settings import SettingsConfigDict

from dronecommon.auth.roles import DELIVERIES_READ
from dronecommon.events import EventType
from dronecommon.settings import AuthSettings, RedisSettings, ServiceSettings

# Rescheduled too: a customer who moves the drop-off (the web app's change page), or the time,
# tells everyone told about the delivery where and when it goes now; ChangeRefused, that a move
# the drones cannot fly was not made and why.
DEFAULT_EVENTS = [
    EventType.ASSIGNED,
    EventType.RESCHEDULED,
    EventType.CHANGE_REFUSED,
    EventType.PICKED_UP,
    EventType.ETA_CHANGED,
    EventType.COMPLETED,
    EventType.CANCELLED,
]


class NotifierAuthSettings(AuthSettings):
    """The notifier's identity: the app role it holds on the delivery service (reads).

    In Azure that is an app role assignment of the notifier's identity (see infra/README.md);
    locally, the development issuer puts the same role in the tokens it mints. The outbound scope
    (``NOTIFIER_AUTH__OUTBOUND_SCOPES__DELIVERY``) is set per environment.
    """

    dev_roles: dict[str, list[str]] = Field(default_factory=lambda: {"delivery": [DELIVERIES_READ]})


class SmtpSettings(BaseModel):
    host: str = "127.0.0.1"
    port: int = Field(default=1025, ge=1, le=65535)
    # none (Mailpit), starttls (port 587), implicit (port 465).
    tls: Literal["none", "starttls", "implicit"] = "none"
    username: str | None = None
    password: SecretStr | None = None
    validate_certs: bool = True
    # Connections kept open between messages (0: one connection per message); the default is
    # the senders' concurrency (``NOTIFIER_OUTBOX__CONCURRENCY``), so a busy process keeps every
    # sender's connection. A connection is reused for at most ``messages_per_connection``
    # messages (relays cap them) and not after ``idle_seconds`` unused (servers drop idle
    # clients; RFC 5321 lets them after 5 minutes).
    pool_size: int | None = Field(default=None, ge=0, le=1000)
    messages_per_connection: int = Field(default=100, ge=1)
    idle_seconds: float = Field(default=30.0, gt=0)
    # The name given in EHLO; by default this host's fully qualified name, looked up once.
    local_hostname: str | None = None


class EmailSettings(BaseModel):
    transport: Literal["smtp", "acs", "off"] = "smtp"
    # The From header (SMTP); with ACS its address must be a sender of a verified domain.
    sender: str = "Fabrikam Drone Delivery <notifications@dronedelivery.example>"
    # Message-IDs are <hash@this domain>.
    message_id_domain: str = Field(default="dronedelivery.example", min_length=1)
    smtp: SmtpSettings = Field(default_factory=SmtpSettings)
    # Azure Communication Services: https://<resource>.communication.azure.com
    acs_endpoint: str | None = None


class SmsSettings(BaseModel):
    transport: Literal["sink", "acs", "off"] = "sink"
    # The local sink: a Redis list of the last ``sink_max`` messages, and this file (JSON lines).
    sink_file: str | None = None
    sink_max: int = Field(default=10_000, ge=1)
    # Azure Communication Services: the endpoint and the number (or sender id) it sends from.
    acs_endpoint: str | None = None
    sender: str | None = None


class WebhookSettings(BaseModel):
    enabled: bool = True
    timeout: float = Field(default=10.0, gt=0)
    # Private, loopback, link-local, ... targets: allowed only in development unless set.
    allow_private_targets: bool | None = None
    max_connections: int = Field(default=100, ge=1)


class OutboxSettings(BaseModel):
    # Sends at once per process, and how often an idle sender looks for due items.
    concurrency: int = Field(default=16, ge=1, le=1000)
    poll_interval: float = Field(default=0.5, gt=0, le=60)
    # A claimed item is the sender's for this long; a send is cut off at ``send_timeout``.
    lease_seconds: float = Field(default=60.0, gt=0)
    send_timeout: float = Field(default=20.0, gt=0)
    # Retries: exponential backoff from ``backoff_base`` up to ``backoff_max`` (jittered), until
    # ``max_attempts`` or ``max_age`` seconds after the event; then the item is failed.
    backoff_base: float = Field(default=2.0, gt=0)
    backoff_max: float = Field(default=900.0, gt=0)
    max_attempts: int = Field(default=12, ge=1)
    max_age: float = Field(default=24 * 3600.0, gt=0)
    # Items (sent, failed, and their index per delivery) are kept this long.
    retention_seconds: int = Field(default=7 * 24 * 3600, ge=60)
    # On SIGTERM, sends in flight get this long to finish; the rest are handed back.
    shutdown_grace: float = Field(default=15.0, ge=0)

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.lease_seconds < 2 * self.send_timeout:
            raise ValueError("lease_seconds must be at least twice send_timeout")
        if self.retention_seconds < 2 * self.max_age:
            raise ValueError("retention_seconds must be at least twice max_age")
        return self


class NotifierSettings(ServiceSettings):
    """``NOTIFIER_PORT``, ``NOTIFIER_EMAIL__SMTP__PORT``, ``NOTIFIER_PUBLIC_BASE_URL``..."""

    model_config = SettingsConfigDict(
        env_prefix="NOTIFIER_", env_nested_delimiter="__", extra="ignore", case_sensitive=False
    )

    service_name: ClassVar[str] = "notifier"

    port: int = Field(default=8007, ge=0, le=65535)
    # The internal API needs a service token holding Notifications.Read or Webhooks.Secrets.
    auth: NotifierAuthSettings = Field(default_factory=NotifierAuthSettings)
    # The outbox, the delivery events (read) and the webhook secrets.
    redis: RedisSettings = Field(default_factory=RedisSettings)
    key_prefix: str = Field(default="notifier", min_length=1, max_length=64, pattern=r"^[^{}\s]+$")
    # Tracking links: <public_base_url>/track/<deliveryId> (the web app's public page).
    public_base_url: str = "http://127.0.0.1:8000"

    # The delivery events: the delivery service's key prefix, this consumer group, where a new
    # group starts, which types are told, how old an event may be to be told, and how long
    # another replica's unacknowledged entries wait before this one takes them over.
    delivery_key_prefix: str = Field(default="delivery", min_length=1)
    events_group: str = Field(default="notifier", min_length=1)
    events_start_at_latest: bool = True
    events: list[EventType] = Field(default_factory=lambda: list(DEFAULT_EVENTS))
    events_max_age: float = Field(default=24 * 3600.0, gt=0)
    events_batch: int = Field(default=100, ge=1, le=1000)
    events_claim_idle: float = Field(default=30.0, gt=0)
    # Recipients of an event that does not carry them come from the delivery service.
    delivery_url: str = "http://127.0.0.1:8002"

    email: EmailSettings = Field(default_factory=EmailSettings)
    sms: SmsSettings = Field(default_factory=SmsSettings)
    webhooks: WebhookSettings = Field(default_factory=WebhookSettings)
    outbox: OutboxSettings = Field(default_factory=OutboxSettings)
    # Readiness: how long the SMTP check may take.
    channel_check_timeout: float = Field(default=2.0, gt=0)

    @property
    def development(self) -> bool:
        return self.environment == "development"

    @property
    def private_targets_allowed(self) -> bool:
        allowed = self.webhooks.allow_private_targets
        return self.development if allowed is None else allowed

    @model_validator(mode="after")
    def _acs_complete(self) -> Self:
        if self.email.transport == "acs" and not self.email.acs_endpoint:
            raise ValueError("email.transport=acs needs email.acs_endpoint")
        if self.sms.transport == "acs" and not (self.sms.acs_endpoint and self.sms.sender):
            raise ValueError("sms.transport=acs needs sms.acs_endpoint and sms.sender")
        return self
