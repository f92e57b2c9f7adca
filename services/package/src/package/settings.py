"""The package service's settings: ``PACKAGE_*`` environment variables."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from dronecommon.settings import MongoSettings, ServiceSettings


class PackageSettings(ServiceSettings):
    """``PACKAGE_PORT``, ``PACKAGE_MONGO__URL``, ``PACKAGE_MONGO__DATABASE`` and the shared rest."""

    model_config = SettingsConfigDict(
        env_prefix="PACKAGE_", env_nested_delimiter="__", extra="ignore", case_sensitive=False
    )

    service_name: ClassVar[str] = "package"

    port: int = Field(default=8003, ge=0, le=65535)
    mongo: MongoSettings = Field(default_factory=MongoSettings)
    # The budget of every MongoDB call, server selection and connecting included (pymongo's
    # timeoutMS, also sent as maxTimeMS): past it the request is answered 503 with Retry-After.
    query_timeout: float = Field(default=3.0, gt=0)
