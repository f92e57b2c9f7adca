"""The ingestion service's settings: ``INGESTION_*`` environment variables."""

from __future__ import annotations

from typing import ClassVar, Self

from pydantic import BaseModel, Field, model_validator
from pydantic_settings import SettingsConfigDict

from dronecommon.area import ServiceArea
from dronecommon.settings import QueueSettings, RedisSettings, ServiceSettings


class LimitSettings(BaseModel):
    """Per-account limits on new delivery requests (``INGESTION_LIMITS__*``).

    - a **rate**: ``requests_per_minute`` on average, ``burst`` of them at once (GCRA, in Redis,
      so it holds across replicas);
    - a **cap** of ``max_in_progress`` deliveries in progress at once. A delivery counts from its
      acceptance until the delivery service reports it Completed or Cancelled, or at the latest
      ``in_progress_seconds`` after acceptance (so nothing is counted forever).
    """

    requests_per_minute: float = Field(default=60.0, gt=0)
    burst: int = Field(default=20, ge=1)
    max_in_progress: int = Field(default=50, ge=1)
    in_progress_seconds: float = Field(default=4 * 3600.0, gt=0)
    # The Retry-After of a 429 for the cap (the rate's own is exact).
    in_progress_retry_after: int = Field(default=60, ge=1)


class AdmissionSettings(BaseModel):
    """Admission control at the front door (``INGESTION_ADMISSION__*``; see ``admission.py``).

    A new delivery request is refused (503 ``overloaded`` with ``Retry-After``, nothing queued)
    while the queue holds more than ``max_backlog_seconds`` of work: its backlog over the rate
    at which the workflow has drained it over the last ``window`` seconds. The queue is read at
    most once per ``interval`` per replica; below ``min_backlog`` messages every request is
    admitted. Service Bus does not report how fast its queue drains: ``servicebus_drain_rate``
    (messages per second, the workflow fleet's throughput) stands in for it, and without it
    admission control is off on that transport.
    """

    enabled: bool = True
    max_backlog_seconds: float = Field(default=2.0, gt=0)
    min_backlog: int = Field(default=200, ge=0)
    interval: float = Field(default=0.5, gt=0, le=60)
    window: float = Field(default=5.0, gt=0, le=600)
    retry_after_max: int = Field(default=30, ge=1)
    servicebus_drain_rate: float | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _window_holds_samples(self) -> Self:
        if self.window < 2 * self.interval:
            raise ValueError("window must hold at least two intervals")
        return self


class IngestionSettings(ServiceSettings):
    """``INGESTION_PORT``, ``INGESTION_REDIS__URL``, ``INGESTION_QUEUE__*`` and the shared rest."""

    model_config = SettingsConfigDict(
        env_prefix="INGESTION_", env_nested_delimiter="__", extra="ignore", case_sensitive=False
    )

    service_name: ClassVar[str] = "ingestion"

    port: int = Field(default=8001, ge=0, le=65535)
    # Redis holds the Idempotency-Key records (and, by default, the queue's stream).
    redis: RedisSettings = Field(default_factory=RedisSettings)
    queue: QueueSettings = Field(default_factory=QueueSettings)
    # Seconds a queue send may take before the request is answered 503.
    send_timeout: float = Field(default=3.0, gt=0)
    # Seconds an idempotency-store call may take before the request is answered 503.
    store_timeout: float = Field(default=2.0, gt=0)
    # The Retry-After (seconds) of a 503.
    retry_after: int = Field(default=5, ge=1)
    # How long an Idempotency-Key is remembered (seconds).
    idempotency_ttl: float = Field(default=86_400.0, gt=0)
    # How long a request owns its key while it sends (seconds); outlasts the send timeout.
    idempotency_lease: float = Field(default=10.0, gt=0)
    # How long a request with a key that another request is sending waits for its answer.
    idempotency_wait: float = Field(default=5.0, ge=0)
    # Pickups and drop-offs must lie in it (the same definition as the drone scheduler's).
    service_area: ServiceArea = Field(default_factory=ServiceArea)
    limits: LimitSettings = Field(default_factory=LimitSettings)
    admission: AdmissionSettings = Field(default_factory=AdmissionSettings)
    # How long a delivery's owner is remembered (for reschedules and cancels): at least the
    # delivery service's retention of deliveries (7 days) plus the longest delivery.
    ownership_ttl: float = Field(default=8 * 86_400.0, gt=0)
    # The delivery events (Completed, Cancelled end a delivery in progress): the delivery
    # service's Redis (empty: this service's), its key prefix, and this service's group.
    events_redis_url: str | None = None
    delivery_key_prefix: str = Field(default="delivery", min_length=1)
    events_group: str = Field(default="ingestion", min_length=1)

    @model_validator(mode="after")
    def _lease_outlasts_the_send(self) -> Self:
        if self.idempotency_lease <= self.send_timeout + self.store_timeout:
            raise ValueError("idempotency_lease must be longer than send_timeout + store_timeout")
        if self.idempotency_ttl <= self.idempotency_lease:
            raise ValueError("idempotency_ttl must be longer than idempotency_lease")
        return self
