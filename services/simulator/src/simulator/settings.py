"""The simulator's settings: ``SIMULATOR_*`` environment variables.

A *fast fleet* for tests and demonstrations: ``SIMULATOR_SPEED_FACTOR=200``,
``SIMULATOR_HANDLING_SECONDS=0.5``, ``SIMULATOR_TELEMETRY_INTERVAL=0.2`` — a flight of a few miles
then takes seconds (the speeds in the fixes are the simulated ones).
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from dronecommon.auth.roles import DELIVERIES_CONFIRM, DRONES_FLY
from dronecommon.settings import (
    AuthSettings,
    RedisSettings,
    ServiceSettings,
    TelemetryStreamSettings,
)


class SimulatorAuthSettings(AuthSettings):
    """The simulator's identity: the app roles the drones hold on the services they call.

    In Azure those are app role assignments of the simulator's identity (see infra/README.md);
    locally, the development issuer puts the same roles in the tokens it mints. Outbound scopes
    (``SIMULATOR_AUTH__OUTBOUND_SCOPES__DELIVERY``, ``__DRONESCHEDULER``) are set per environment.
    """

    dev_roles: dict[str, list[str]] = Field(
        default_factory=lambda: {
            "delivery": [DELIVERIES_CONFIRM],
            "dronescheduler": [DRONES_FLY],
        }
    )


class SimulatorSettings(ServiceSettings):
    """``SIMULATOR_PORT``, ``SIMULATOR_REDIS__URL``, ``SIMULATOR_TELEMETRY_INTERVAL``..."""

    model_config = SettingsConfigDict(
        env_prefix="SIMULATOR_", env_nested_delimiter="__", extra="ignore", case_sensitive=False
    )

    service_name: ClassVar[str] = "simulator"

    port: int = Field(default=8006, ge=0, le=65535)
    # The control API needs a service token holding Fleet.Control.
    auth: SimulatorAuthSettings = Field(default_factory=SimulatorAuthSettings)
    # Flight state, the delivery events (read) and, by default, the telemetry stream.
    redis: RedisSettings = Field(default_factory=RedisSettings)
    telemetry_stream: TelemetryStreamSettings = Field(default_factory=TelemetryStreamSettings)
    key_prefix: str = Field(default="simulator", min_length=1, pattern=r"^[^{}\s]+$")
    # The services it calls: confirmations (delivery), drones and releases (drone scheduler).
    delivery_url: str = "http://127.0.0.1:8002"
    dronescheduler_url: str = "http://127.0.0.1:8004"
    downstream_health_timeout: float = Field(default=1.0, gt=0)

    # The delivery events: the delivery service's key prefix, this consumer group, where a new
    # group starts (at the newest event unless false), and how old an event may be to be flown.
    delivery_key_prefix: str = Field(default="delivery", min_length=1)
    events_group: str = Field(default="simulator", min_length=1)
    events_start_at_latest: bool = True
    events_max_age: float = Field(default=3600.0, gt=0)
    events_batch: int = Field(default=100, ge=1, le=1000)

    # Flying.
    telemetry_interval: float = Field(default=1.0, gt=0, le=60)
    # The telemetry of a second is spread over this many ticks (each drone in one of them).
    ticks_per_interval: int = Field(default=10, ge=1, le=100)
    handling_seconds: float = Field(default=60.0, ge=0)
    speed_factor: float = Field(default=1.0, gt=0, le=10_000)
    wind_seed: str = "fabrikam"
    wind_strength: float = Field(default=0.2, ge=0, lt=1)
    gust_strength: float = Field(default=0.1, ge=0, lt=1)
    climb_miles: float = Field(default=0.1, ge=0)
    battery_range_miles: float = Field(default=60.0, gt=0)

    # One process flies the fleet: it holds a lease in Redis, renewed every third of its TTL.
    leader_ttl: float = Field(default=15.0, ge=1)
    # Confirmations and releases: concurrent calls, and the longest wait between retries.
    action_concurrency: int = Field(default=32, ge=1)
    action_retry_max: float = Field(default=30.0, gt=0)
    # Finished deliveries are remembered this long (a late Assigned for one is not flown again).
    finished_ttl: float = Field(default=24 * 3600.0, gt=0)
    drone_cache_seconds: float = Field(default=3600.0, ge=0)
    shutdown_grace: float = Field(default=5.0, ge=0)
