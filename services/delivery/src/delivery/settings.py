"""The delivery service's settings: ``DELIVERY_*`` environment variables."""

from __future__ import annotations

from typing import ClassVar

from pydantic import BaseModel, Field
from pydantic_settings import SettingsConfigDict

from dronecommon.settings import RedisSettings, ServiceSettings, TelemetryStreamSettings

SECONDS_PER_DAY = 24 * 3600


class FixStreamSettings(TelemetryStreamSettings):
    """``DELIVERY_TELEMETRY_STREAM__*``: where the fixes come from; this service's consumer group
    is ``delivery``."""

    consumer_group: str = Field(default="delivery", min_length=1, max_length=64)


class LiveSettings(BaseModel):
    """``DELIVERY_LIVE__*``: the telemetry consumer and the rules of live status and ETAs."""

    # Consume the drone telemetry in this replica (competing consumers of one group), under this
    # name (default: delivery-<host>-<pid>, unique per process).
    consumer: bool = True
    consumer_name: str | None = Field(default=None, min_length=1, max_length=200)
    # A fix older than this (seconds) is stale: the ETAs fall back to the plan.
    stale_after: float = Field(default=30.0, gt=0)
    # Time on the ground at the pickup and again at the drop-off, in the live ETAs (the
    # simulator's SIMULATOR_HANDLING_SECONDS and the scheduler's STOP_SECONDS default to 60 too).
    handling_seconds: float = Field(default=60.0, ge=0)
    # "Recent" ground speed: the mean speedMph of this many latest airborne fixes, at least
    # min_speed_mph.
    speed_window: int = Field(default=5, ge=1, le=100)
    min_speed_mph: float = Field(default=5.0, gt=0)
    # EtaChanged when the live deliveryETA moved at least this far (seconds) from the last
    # Assigned, Rescheduled or EtaChanged.
    eta_change_threshold: float = Field(default=300.0, gt=0)
    # Fixes kept per delivery (its trail), and stage entries kept per delivery (resuming streams).
    trail_length: int = Field(default=120, ge=1, le=10_000)
    stages_maxlen: int = Field(default=100, ge=10, le=10_000)
    # How long at least a drone's latest fix is kept after it stops reporting (seconds; at most
    # one and a half times as long: its expiry is moved only once less than this is left).
    drone_fix_ttl: int = Field(default=SECONDS_PER_DAY, ge=60)
    # Conflicting writes to one delivery (another replica applied its fixes first) are retried
    # this many times before the batch is left to be delivered again.
    max_attempts: int = Field(default=8, ge=1, le=100)
    # Seconds the consumer may take to finish its batch on shutdown.
    shutdown_grace: float = Field(default=5.0, ge=0)


class SseSettings(BaseModel):
    """``DELIVERY_SSE__*``: the tracking streams (Server-Sent Events)."""

    # Status events per stream: at most ``max_rate`` a second on average, in bursts of at most
    # ``burst`` (a token bucket: a fix that arrives late and the next one on time both go out at
    # once); beyond, the newest state wins. Stage changes are never dropped.
    max_rate: float = Field(default=1.0, gt=0, le=1000)
    burst: int = Field(default=2, ge=1, le=100)
    # A comment line at least this often (seconds) keeps proxies from closing an idle stream.
    heartbeat: float = Field(default=15.0, gt=0, le=300)
    # The client's reconnection delay (the ``retry:`` field, milliseconds).
    retry_ms: int = Field(default=3000, ge=0, le=600_000)
    # Concurrent streams per replica; beyond: 503 with Retry-After.
    max_watchers: int = Field(default=10_000, ge=1)
    retry_after: int = Field(default=5, ge=1, le=3600)
    # A stream whose client takes longer than this (seconds) to accept an event is closed.
    send_timeout: float = Field(default=30.0, gt=0)


class DeliverySettings(ServiceSettings):
    """``DELIVERY_PORT``, ``DELIVERY_REDIS__URL``, ``DELIVERY_RETENTION_SECONDS`` and the rest."""

    model_config = SettingsConfigDict(
        env_prefix="DELIVERY_", env_nested_delimiter="__", extra="ignore", case_sensitive=False
    )

    service_name: ClassVar[str] = "delivery"

    port: int = Field(default=8002, ge=0, le=65535)
    redis: RedisSettings = Field(default_factory=RedisSettings)
    # Every key this service writes starts with this prefix (a shared Redis stays tidy).
    key_prefix: str = Field(default="delivery", min_length=1, max_length=64, pattern=r"^[^{}\s]+$")
    # How long a Completed or Cancelled delivery (all its keys) is kept before it expires.
    retention_seconds: int = Field(default=7 * SECONDS_PER_DAY, ge=1)
    # How long a per-owner monthly summary set is kept after its month ends (0: forever).
    summary_retention_days: int = Field(default=730, ge=0)
    # Estimated ETAs when no drone timing is known: a dispatch allowance before pickup, then a
    # straight flight from pickup to drop-off at this speed.
    estimate_speed_mph: float = Field(default=30.0, gt=0, le=1000)
    estimate_dispatch_minutes: float = Field(default=10.0, ge=0, le=24 * 60)
    # The delivery events stream (``<prefix>:events``) is trimmed to about this many entries.
    events_maxlen: int = Field(default=1_000_000, ge=1000)
    # At most this many distinct notify-me requests are kept per delivery.
    max_notify_requests: int = Field(default=20, ge=1, le=1000)
    # Drone telemetry: the stream (consumer group ``delivery``), live status and ETAs, streams.
    telemetry_stream: FixStreamSettings = Field(default_factory=FixStreamSettings)
    live: LiveSettings = Field(default_factory=LiveSettings)
    sse: SseSettings = Field(default_factory=SseSettings)
