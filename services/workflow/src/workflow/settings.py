"""The workflow's settings: ``WORKFLOW_*`` environment variables.

Defaults were chosen from measurements on the native stack (see the service README): they keep a
2-core machine busy without queueing work behind the downstream services' connection pools, and
they make a backend outage of a few minutes end in redelivery, not in dead letters.
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from dronecommon.area import ServiceArea
from dronecommon.auth.roles import DELIVERIES_WRITE, DRONES_ASSIGN, PACKAGES_WRITE
from dronecommon.settings import (
    AuthSettings,
    HttpClientSettings,
    QueueSettings,
    RedisSettings,
    ServiceSettings,
)

# The services the workflow calls, by the names of their URL settings and outbound scopes.
DOWNSTREAM = ("package", "dronescheduler", "delivery")


class WorkflowQueueSettings(QueueSettings):
    """The shared queue settings with the workflow's measured defaults.

    A subclass rather than a default instance: setting one ``WORKFLOW_QUEUE__*`` variable must not
    reset the others to the shared defaults.
    """

    max_concurrency: int = Field(default=64, ge=1)
    prefetch: int = Field(default=64, ge=0)
    lock_duration: float = Field(default=30.0, gt=0)
    max_delivery_count: int = Field(default=10, ge=1)


class WorkflowHttpSettings(HttpClientSettings):
    """Outbound HTTP defaults for the three downstream services."""

    retry_after_max: float = Field(default=5.0, ge=0)


class WorkflowAuthSettings(AuthSettings):
    """The workflow's identity: the app roles it holds on each service it calls.

    In Azure those are app role assignments of the workflow's identity (see infra/README.md);
    locally, the development issuer puts the same roles in the tokens it mints. Outbound scopes
    (``WORKFLOW_AUTH__OUTBOUND_SCOPES__PACKAGE`` and so on) are set per environment.
    """

    dev_roles: dict[str, list[str]] = Field(
        default_factory=lambda: {
            "package": [PACKAGES_WRITE],
            "dronescheduler": [DRONES_ASSIGN],
            "delivery": [DELIVERIES_WRITE],
        }
    )


class WorkflowSettings(ServiceSettings):
    """``WORKFLOW_PORT``, ``WORKFLOW_REDIS__URL``, ``WORKFLOW_QUEUE__*``, ``WORKFLOW_*_URL``..."""

    model_config = SettingsConfigDict(
        env_prefix="WORKFLOW_", env_nested_delimiter="__", extra="ignore", case_sensitive=False
    )

    service_name: ClassVar[str] = "workflow"

    port: int = Field(default=8005, ge=0, le=65535)
    # Where pending reschedules/cancels are recorded (and, by default, the queue's stream).
    redis: RedisSettings = Field(default_factory=RedisSettings)
    queue: WorkflowQueueSettings = Field(default_factory=WorkflowQueueSettings)
    http: WorkflowHttpSettings = Field(default_factory=WorkflowHttpSettings)
    auth: WorkflowAuthSettings = Field(default_factory=WorkflowAuthSettings)
    # Where free-text places resolve (the same definition as ingestion's and the scheduler's).
    service_area: ServiceArea = Field(default_factory=ServiceArea)

    # The three services the workflow calls.
    package_url: str = "http://127.0.0.1:8003"
    dronescheduler_url: str = "http://127.0.0.1:8004"
    delivery_url: str = "http://127.0.0.1:8002"

    # A failed attempt holds its message (lock renewed) for a backoff before abandoning it:
    # min(abandon_backoff_max, abandon_backoff_base * 2**(deliveries - 1)), jittered to 50-100%,
    # and never less than a downstream Retry-After (capped at abandon_backoff_max).
    abandon_backoff_base: float = Field(default=1.0, ge=0)
    abandon_backoff_max: float = Field(default=30.0, ge=0)
    # How long a recorded reschedule/cancel waits for its delivery (refreshed on every write).
    pending_ttl: float = Field(default=7 * 24 * 3600.0, gt=0)
    # Seconds the consumer gives in-flight messages at shutdown (SIGTERM) before abandoning them.
    shutdown_grace: float = Field(default=20.0, ge=0)
    # Readiness: how long each downstream /healthz may take.
    downstream_health_timeout: float = Field(default=1.0, gt=0)

    def production_auth_problem(self) -> str | None:
        """The workflow serves health only (no token to check), so production needs a token on
        every call it makes instead: an outbound scope per called service."""
        missing = [
            self.env_var("auth", "outbound_scopes", name)
            for name in DOWNSTREAM
            if not self.auth.outbound_scopes.get(name)
        ]
        if missing:
            return (
                f"{self.env_var('environment')} is production but {', '.join(missing)} not set: "
                "every call to the package, drone scheduler and delivery services carries a "
                "token in production"
            )
        return None
