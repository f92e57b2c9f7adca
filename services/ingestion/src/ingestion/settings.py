"""The ingestion service's settings: ``INGESTION_*`` environment variables."""

from __future__ import annotations

from typing import ClassVar, Self

from pydantic import Field, model_validator
from pydantic_settings import SettingsConfigDict

from dronecommon.settings import QueueSettings, RedisSettings, ServiceSettings


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

    @model_validator(mode="after")
    def _lease_outlasts_the_send(self) -> Self:
        if self.idempotency_lease <= self.send_timeout + self.store_timeout:
            raise ValueError("idempotency_lease must be longer than send_timeout + store_timeout")
        if self.idempotency_ttl <= self.idempotency_lease:
            raise ValueError("idempotency_ttl must be longer than idempotency_lease")
        return self
