"""The package service's refusals; the library answers them as problem+json."""

from __future__ import annotations

from dronecommon import DomainError


class PackageNotFound(DomainError):
    """No package has the id."""

    status = 404
    problem = "package-not-found"

    def __init__(self, package_id: str) -> None:
        super().__init__(f"No package {package_id!r}.")
        self.package_id = package_id
