"""The package routes (thin: validation is in the schemas, rules in the service).

Every route is internal: callers hold ``Packages.Write`` (the workflow; a customer token is 403)
and name the account they act for in ``Dronedelivery-Account-Id``: packages are kept per
account, so another account's package does not exist (404) and cannot be changed.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Path, Query, Response, status
from pydantic import StringConstraints
from starlette.convertors import Convertor, register_url_convertor

from dronecommon import error_responses, from_state
from dronecommon.auth.policy import requires
from dronecommon.auth.roles import PACKAGES_WRITE
from dronecommon.domain import ACCOUNT_HEADER

from .runtime import State
from .schemas import (
    MAX_ID_LENGTH,
    PACKAGE_ID_PATTERN,
    PackageIn,
    PackageOut,
    PackagePatch,
    PackageSummary,
)
from .service import PackageService

Packages = Annotated[PackageService, from_state(State, "packages")]
# The account of calls that name none (tokens off, or an older caller).
DEFAULT_ACCOUNT = "default"
PackageId = Annotated[
    str,
    Path(
        alias="id",
        pattern=PACKAGE_ID_PATTERN,
        min_length=1,
        max_length=MAX_ID_LENGTH,
        description="1..128 of A-Z a-z 0-9 . _ ~ -, starting with a letter or digit",
        examples=["mypackage"],
    ),
]
OwnerIdPath = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_ID_LENGTH),
    Path(alias="ownerId", description="Any owner id, percent-encoded", examples=["myowner"]),
]
Account = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_ID_LENGTH),
    Header(
        alias=ACCOUNT_HEADER,
        description="The account the caller acts for (the workflow: the request's account); "
        f"absent: the account {DEFAULT_ACCOUNT!r}",
        examples=["contoso"],
    ),
]
Year = Annotated[int, Query(ge=1, le=9999, description="UTC calendar year")]
Month = Annotated[int, Query(ge=1, le=12, description="UTC calendar month, 1..12")]

_CREATED: dict[int | str, dict[str, Any]] = {
    201: {
        "description": "Created",
        "headers": {
            "Location": {"description": "/api/packages/{id}", "schema": {"type": "string"}}
        },
    }
}

router = APIRouter(
    prefix="/api/packages", tags=["packages"], dependencies=[requires(PACKAGES_WRITE)]
)


class _AnyTextConvertor(Convertor[str]):
    """The rest of the path as text, line breaks and slashes included: owner ids are free text."""

    regex = r"[\s\S]*"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("anytext", _AnyTextConvertor())


# Declared before "/{id}" (which could not take the slash anyway): the summary is never a package.
@router.get(
    "/summary/{ownerId:anytext}",
    summary="Total weight of an owner's packages created in one UTC month",
    responses=error_responses(400, 503),
)
async def package_summary(
    owner_id: OwnerIdPath,
    year: Year,
    month: Month,
    packages: Packages,
    account: Account = DEFAULT_ACCOUNT,
) -> PackageSummary:
    return await packages.summary(account, owner_id, year, month)


@router.put(
    "",
    status_code=status.HTTP_201_CREATED,
    summary="Create a package under a new id",
    responses={**_CREATED, **error_responses(400, 503)},
)
async def create_package(
    body: PackageIn, packages: Packages, response: Response, account: Account = DEFAULT_ACCOUNT
) -> PackageOut:
    package = await packages.create(account, body)
    response.headers["Location"] = f"{router.prefix}/{package.id}"
    return package


@router.put(
    "/{id}",
    status_code=status.HTTP_201_CREATED,
    response_model=PackageOut,
    summary="Create or replace a package",
    responses={
        **_CREATED,
        204: {"description": "The package existed and was updated"},
        **error_responses(400, 503),
    },
)
async def put_package(
    package_id: PackageId,
    body: PackageIn,
    packages: Packages,
    response: Response,
    account: Account = DEFAULT_ACCOUNT,
) -> PackageOut | Response:
    result = await packages.put(account, package_id, body)
    if not result.created:
        return Response(status_code=status.HTTP_204_NO_CONTENT)
    response.headers["Location"] = f"{router.prefix}/{package_id}"
    return result.package


@router.get(
    "/{id}",
    summary="Read a package",
    responses=error_responses(400, 404, 503),
)
async def get_package(
    package_id: PackageId, packages: Packages, account: Account = DEFAULT_ACCOUNT
) -> PackageOut:
    return await packages.get(account, package_id)


@router.patch(
    "/{id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Change some of a package's size, weight and tag",
    responses=error_responses(400, 404, 503),
)
async def patch_package(
    package_id: PackageId,
    body: PackagePatch,
    packages: Packages,
    account: Account = DEFAULT_ACCOUNT,
) -> None:
    await packages.patch(account, package_id, body)
