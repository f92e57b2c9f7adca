"""The delivery service's settings: ``DELIVERY_*`` environment variables."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from dronecommon.settings import RedisSettings, ServiceSettings

SECONDS_PER_DAY = 24 * 3600


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
