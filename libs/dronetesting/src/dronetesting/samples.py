"""The contract's sample delivery request, exactly as published (README, ``make run``)."""

from __future__ import annotations

import copy
from typing import Any

SAMPLE_REQUEST: dict[str, Any] = {
    "ownerId": "myowner",
    "pickupLocation": "my pickup",
    "pickupTime": "2019-05-08T20:00:00.000Z",
    "deadline": "",
    "expedited": True,
    "confirmationRequired": "None",
    "packageInfo": {"packageId": "mypackage", "size": "Small", "weight": 10, "tag": "mytag"},
    "dropOffLocation": "drop off",
}


def sample_request(**changes: Any) -> dict[str, Any]:
    """A copy of :data:`SAMPLE_REQUEST` (nested parts too) with ``changes`` applied."""
    return {**copy.deepcopy(SAMPLE_REQUEST), **changes}
