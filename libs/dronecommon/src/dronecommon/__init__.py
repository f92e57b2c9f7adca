"""Shared service defaults for the drone delivery services.

Settings, the app factory (health, problem+json, logs, telemetry, auth), outbound HTTP, messaging
and test helpers. This package never imports from a service.
"""

from dronecommon.app import ServiceApp, create_service_app, error_responses, readiness
from dronecommon.health import ReadinessChecks, mongo_check, redis_check
from dronecommon.problems import DomainError, ProblemError
from dronecommon.settings import ServiceSettings, SettingsError, load_settings
from dronecommon.state import from_state

__all__ = [
    "DomainError",
    "ProblemError",
    "ReadinessChecks",
    "ServiceApp",
    "ServiceSettings",
    "SettingsError",
    "create_service_app",
    "error_responses",
    "from_state",
    "load_settings",
    "mongo_check",
    "readiness",
    "redis_check",
]
