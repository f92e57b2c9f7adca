"""The package rules: create-or-replace, partial update, read and the monthly weight summary,
each within one account (packages of other accounts are not there)."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from dronecommon.domain import month_bounds, utcnow

from .errors import PackageNotFound
from .repository import PackageRecord, PackageRepository
from .schemas import PackageIn, PackageOut, PackagePatch, PackageSummary

# Summed weights are rounded to this many decimals, which hides binary floating-point noise
# (0.1 + 0.2 is answered 0.3) far below any weight a client would send.
SUMMARY_DECIMALS = 6


@dataclass(frozen=True, slots=True)
class PutResult:
    package: PackageOut
    created: bool


def _out(record: PackageRecord) -> PackageOut:
    return PackageOut.model_validate(
        {"id": record.id, "size": record.size, "weight": record.weight, "tag": record.tag}
    )


def _record(package_id: str, body: PackageIn) -> PackageRecord:
    return PackageRecord(id=package_id, size=body.size.value, weight=body.weight, tag=body.tag)


class PackageService:
    def __init__(
        self,
        repository: PackageRepository,
        *,
        clock: Callable[[], dt.datetime] = utcnow,
        new_id: Callable[[], str] = lambda: str(uuid.uuid4()),
    ) -> None:
        self.repository = repository
        self.clock = clock
        self.new_id = new_id

    async def put(self, account_id: str, package_id: str, body: PackageIn) -> PutResult:
        """Create the package or replace its size, weight and tag (atomic upsert)."""
        record = _record(package_id, body)
        created = await self.repository.upsert(
            record, account_id=account_id, owner_id=body.owner_id, now=self.clock()
        )
        return PutResult(package=_out(record), created=created)

    async def create(self, account_id: str, body: PackageIn) -> PackageOut:
        """Store a new package under a new id (a random UUID)."""
        record = _record(self.new_id(), body)
        await self.repository.insert(
            record, account_id=account_id, owner_id=body.owner_id, now=self.clock()
        )
        return _out(record)

    async def get(self, account_id: str, package_id: str) -> PackageOut:
        record = await self.repository.get(account_id, package_id)
        if record is None:
            raise PackageNotFound(package_id)
        return _out(record)

    async def patch(self, account_id: str, package_id: str, patch: PackagePatch) -> None:
        # Only the fields the client sent (MISSING ones are left out); enums as their values.
        changes = patch.model_dump(mode="json", exclude_unset=True)
        if not await self.repository.update(account_id, package_id, changes, now=self.clock()):
            raise PackageNotFound(package_id)

    async def summary(
        self, account_id: str, owner_id: str, year: int, month: int
    ) -> PackageSummary:
        start, end = month_bounds(year, month)
        total = await self.repository.total_weight(account_id, owner_id, start, end)
        return PackageSummary(total_weight=round(total, SUMMARY_DECIMALS))
