"""A change of places refused after it was accepted, as its owner reads it.

Ingestion accepts a change (202) before the drone scheduler re-plans it; when the scheduler then
refuses (the trip too long for the delivery's drone, a place outside the service area), the
delivery keeps its places and plan, and the owner's status carries ``refusedChange`` until a
later change succeeds. The delivery's page and its change page say what was asked, why it was
not made and where the delivery goes instead; the public page never sees it.
"""

from __future__ import annotations

from typing import Any

from dronecommon.area import place_label
from dronecommon.domain import Location

#: The places a change names: (field, what the page calls it).
PLACES = (("pickup", "pickup"), ("dropoff", "drop-off"))


def _where(name: str | None, at: dict[str, Any]) -> str:
    """A place of the delivery service's JSON as the sentence names it."""
    return place_label(name, Location.model_validate(at))


def _sentence(text: Any) -> str:
    words = str(text or "").strip()
    return words if not words or words.endswith((".", "!", "?")) else f"{words}."


def refusal(delivery: dict[str, Any], status: dict[str, Any]) -> dict[str, Any] | None:
    """The refused change in the pages' words (None: no refusal is the latest word on changes).

    ``asked``: "the drop-off to Pier 9, Tukwila"; ``detail``: the refusal's reason as a sentence;
    ``goesOn``: where the delivery goes instead ("The delivery goes on to Gas Works Park as
    before."); ``at`` identifies the refusal, ``requestedAt`` is when the change was asked for.
    """
    refused = status.get("refusedChange")
    if not isinstance(refused, dict):
        return None
    asked = [
        f"the {what} to {_where(refused.get(f'{name}Place'), refused[name])}"
        for name, what in PLACES
        if refused.get(name)
    ]
    pickup = _where(delivery.get("pickupPlace"), delivery["pickup"])
    dropoff = _where(delivery.get("dropoffPlace"), delivery["dropoff"])
    goes_on = (
        f"The delivery goes on from {pickup} to {dropoff} as before."
        if refused.get("pickup")
        else f"The delivery goes on to {dropoff} as before."
    )
    return {
        "at": refused.get("at"),
        "requestedAt": refused.get("requestedAt"),
        "reason": refused.get("reason"),
        "asked": " and ".join(asked),
        "detail": _sentence(refused.get("detail")),
        "goesOn": goes_on,
    }
