"""The notifier's refusals; the library answers them as problem+json."""

from __future__ import annotations

from dronecommon import DomainError


class SmsSinkOff(DomainError):
    """SMS go to a carrier here (or nowhere): there is no local sink to read."""

    status = 404
    problem = "sms-sink-off"

    def __init__(self, transport: str) -> None:
        super().__init__(f"SMS transport is {transport!r}; the local sink is not in use.")
