"""Fixtures: the package app on the session's real FerretDB, a database of the test's own."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from pymongo import AsyncMongoClient
from pymongo.asynchronous.collection import AsyncCollection

from dronecommon.settings import AuthSettings, MongoSettings
from dronetesting.apps import app_client, wait_ready
from package.main import create_app
from package.repository import COLLECTION
from package.settings import PackageSettings

Document = dict[str, Any]


def package_settings(mongo_url: str, database: str, **overrides: Any) -> PackageSettings:
    mongo = MongoSettings(url=mongo_url, database=database, server_selection_timeout=1.0)
    values: dict[str, Any] = {"auth": AuthSettings(enabled=False), **overrides}
    return PackageSettings(mongo=mongo, log_json=False, **values)


@pytest.fixture
def settings(mongo_url: str, mongo_database: str) -> PackageSettings:
    return package_settings(mongo_url, mongo_database)


@pytest.fixture
async def client(settings: PackageSettings) -> AsyncIterator[httpx.AsyncClient]:
    """The app in process, once its indexes exist (readiness 200)."""
    async with app_client(create_app(settings, configure_logs=False)) as client:
        await wait_ready(client)
        yield client


@pytest.fixture
async def packages(settings: PackageSettings) -> AsyncIterator[AsyncCollection[Document]]:
    """The service's collection, read and written directly (the documented layout)."""
    mongo: AsyncMongoClient[Document] = AsyncMongoClient(settings.mongo.url, tz_aware=True)
    try:
        yield mongo[settings.mongo.database][COLLECTION]
    finally:
        await mongo.close()
