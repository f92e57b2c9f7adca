"""The drone scheduler's settings: ``DRONESCHEDULER_*`` environment variables.

The fleet is configuration: ``DRONESCHEDULER_FLEET__COUNT`` drones spread evenly over the bases
of the service area (``DRONESCHEDULER_SERVICE_AREA__BASES``, a JSON list: the area every service
reads, :mod:`dronecommon.area`) and, at each base, over the drone classes
(``DRONESCHEDULER_FLEET__CLASSES``, a JSON list) in proportion to each class's ``share``.
"""

from __future__ import annotations

from typing import ClassVar, Self

from pydantic import BaseModel, Field, field_validator, model_validator
from pydantic_settings import SettingsConfigDict

from dronecommon.area import NAME_PATTERN, ServiceArea
from dronecommon.area import Base as BaseSpec
from dronecommon.domain import PackageSize
from dronecommon.settings import MongoSettings, ServiceSettings

__all__ = ["BaseSpec", "DroneClassSpec", "DroneSchedulerSettings", "FleetSettings"]


class SchedulerMongoSettings(MongoSettings):
    """MongoDB, with a database of the scheduler's own by default."""

    database: str = "dronescheduler"


class DroneClassSpec(BaseModel):
    """A kind of drone: the largest package size and weight it carries, its cruise speed and its
    cruise altitude (metres above the ground)."""

    name: str = Field(pattern=NAME_PATTERN)
    max_size: PackageSize
    max_weight: float = Field(gt=0)
    speed_mph: float = Field(gt=0)
    share: float = Field(default=1.0, gt=0, description="relative part of each base's drones")
    cruise_altitude: float = Field(default=120.0, ge=0, le=10_000)


DEFAULT_CLASSES = [
    DroneClassSpec(name="light", max_size=PackageSize.SMALL, max_weight=5, speed_mph=45, share=0.1),
    DroneClassSpec(
        name="standard", max_size=PackageSize.MEDIUM, max_weight=25, speed_mph=40, share=0.3
    ),
    DroneClassSpec(
        name="heavy", max_size=PackageSize.LARGE, max_weight=100, speed_mph=30, share=0.6
    ),
]


class FleetSettings(BaseModel):
    """The fleet, its flying rules and how busy answers are given."""

    count: int = Field(default=40_000, ge=1, le=1_000_000)
    classes: list[DroneClassSpec] = Field(
        default_factory=lambda: list(DEFAULT_CLASSES), min_length=1
    )
    # Seconds a drone spends at the pickup and again at the drop-off.
    stop_seconds: float = Field(default=60.0, ge=0)
    # Expedited deliveries fly at this multiple of the class's cruise speed.
    expedited_speed_factor: float = Field(default=1.25, ge=1.0)
    # A drone is released by its flight (the simulator, or a real drone) when it is back at its
    # base. If no release comes, it frees itself at the planned return plus a safety margin:
    # self_release_factor x the planned trip + self_release_seconds (room for slower flights).
    self_release_factor: float = Field(default=0.5, ge=0)
    self_release_seconds: float = Field(default=300.0, ge=0)
    # Seconds a drone stays out after the time its last trip frees it, by the clock of the replica
    # handing it out: the replica that planned the trip computed its end by its own clock, and
    # replicas' clocks disagree a little (NTP keeps nodes within milliseconds; this covers a node
    # that drifted). Retry-After counts it in.
    clock_skew_margin: float = Field(default=2.0, ge=0, le=300)
    # Cap of the Retry-After given when no capable drone is free.
    retry_after_max: int = Field(default=300, ge=1)
    # Drones tried per request before answering 503 when other replicas keep winning them.
    max_claim_attempts: int = Field(default=8, ge=1)

    @field_validator("classes")
    @classmethod
    def _unique_names(cls, items: list[DroneClassSpec]) -> object:
        names = [item.name for item in items]
        if len(set(names)) != len(names):
            raise ValueError(f"names must be unique: {names}")
        return items


class DroneSchedulerSettings(ServiceSettings):
    """``DRONESCHEDULER_PORT``, ``DRONESCHEDULER_MONGO__URL``, ``DRONESCHEDULER_FLEET__COUNT``..."""

    model_config = SettingsConfigDict(
        env_prefix="DRONESCHEDULER_",
        env_nested_delimiter="__",
        extra="ignore",
        case_sensitive=False,
    )

    service_name: ClassVar[str] = "dronescheduler"

    port: int = Field(default=8004, ge=0, le=65535)
    mongo: SchedulerMongoSettings = Field(default_factory=SchedulerMongoSettings)
    fleet: FleetSettings = Field(default_factory=FleetSettings)
    # The bases the fleet flies from, how far around them it delivers, and the longest trip.
    service_area: ServiceArea = Field(default_factory=ServiceArea)
    # Assignment documents kept in memory per process (they never change; see repository.py).
    assignment_cache: int = Field(default=20_000, ge=0)
    # Seconds one MongoDB operation may take before the request is answered 503.
    query_timeout: float = Field(default=5.0, gt=0)
    # Start-up (indexes, seeding, loading the lease log) may take this long per attempt; it is
    # retried in the background until it succeeds, and readiness reports it meanwhile.
    bootstrap_timeout: float = Field(default=120.0, gt=0)
    # How long the lifespan waits for the first start-up attempt before serving anyway.
    startup_wait: float = Field(default=5.0, ge=0)
    # The lease log (compaction.py): every replica reads it whole at start-up and again every
    # lease_refresh_interval seconds, deleting each superseded generation once its successor is
    # lease_retention seconds old (at most lease_prune_batch ids per delete). Knowledge older
    # than half the retention is verified before a claim, so the refresh must run well within it.
    lease_refresh_interval: float = Field(default=120.0, gt=0)
    lease_retention: float = Field(default=900.0, gt=0)
    lease_prune_batch: int = Field(default=500, ge=1, le=10_000)

    @model_validator(mode="after")
    def _refresh_within_retention(self) -> Self:
        if self.lease_refresh_interval * 4 > self.lease_retention:
            raise ValueError(
                "lease_refresh_interval must be at most a quarter of lease_retention (knowledge "
                "is trusted for half the retention, and a refresh may fail)"
            )
        return self

    @model_validator(mode="after")
    def _enough_drones(self) -> Self:
        if self.fleet.count < len(self.service_area.bases):
            raise ValueError("fleet.count must give every base at least one drone")
        return self
