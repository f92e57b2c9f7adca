"""A change of places refused after ingestion accepted it (the drone scheduler could not re-plan
it): the owner reads on the delivery's page and its change page what was asked, why it was not
made and where the delivery goes instead, until a later change succeeds; nobody else sees it."""

from __future__ import annotations

import html
import re
from typing import Any

import httpx

from dronecommon.domain import format_utc, utcnow
from webapp.refused import refusal

from .conftest import Browser, WebStack, refuse_change, wait_until
from .test_change import NEW_DROPOFF, change, change_page, details

FAR_SOUTH = {"latitude": 47.412, "longitude": -122.274, "altitude": 0.0}
DETAIL = (
    "The trip (a drone's base, the pickup, the drop-off and back) would be at least 60.8 miles;"
    " no trip may be longer than 50 miles."
)
REFUSED: dict[str, Any] = {
    "at": "2030-05-08T12:00:02.000Z",
    "requestedAt": "2030-05-08T12:00:00.000Z",
    "reason": "trip-too-long",
    "detail": DETAIL,
    "pickup": None,
    "dropoff": FAR_SOUTH,
    "pickupPlace": None,
    "dropoffPlace": "Pier 9, Tukwila",
}
DELIVERY: dict[str, Any] = {
    "pickup": {"latitude": 47.6097, "longitude": -122.3331},
    "dropoff": {"latitude": 47.669, "longitude": -122.3},
    "pickupPlace": "Pike Place",
    "dropoffPlace": None,
}


def refused_drop_off(place: str) -> dict[str, Any]:
    """What the workflow records when the drone scheduler refuses a drop-off at ``place``
    (asked for now)."""
    return {
        "requestedAt": format_utc(utcnow()),
        "reason": "trip-too-long",
        "detail": DETAIL,
        "dropoff": FAR_SOUTH,
        "dropoffPlace": place,
    }


def alert(page: str) -> str:
    """The words of the delivery page's refused-change alert ("" when it is hidden)."""
    found = re.search(
        r'<p class="alert" role="alert" id="change-refused"([^>]*)>(.*?)</p>', page, re.S
    )
    assert found, "no #change-refused on the page"
    if " hidden" in found.group(1):
        return ""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", "", found.group(2))).split())


def test_the_refusal_in_words_names_what_was_asked_why_and_what_stays() -> None:
    assert refusal(DELIVERY, {"stage": "HeadedToPickup"}) is None
    words = refusal(DELIVERY, {"refusedChange": REFUSED})
    assert words == {
        "at": REFUSED["at"],
        "requestedAt": REFUSED["requestedAt"],
        "reason": "trip-too-long",
        "asked": "the drop-off to Pier 9, Tukwila",
        "detail": DETAIL,
        "goesOn": "The delivery goes on to 47.66900, -122.30000 as before.",
    }
    # Coordinates where no place was named, both places, a detail given without its full stop.
    both = REFUSED | {"pickup": FAR_SOUTH, "dropoffPlace": None, "detail": "Too far"}
    words = refusal(DELIVERY, {"refusedChange": both})
    assert words is not None
    assert words["asked"] == (
        "the pickup to 47.41200, -122.27400 and the drop-off to 47.41200, -122.27400"
    )
    assert words["detail"] == "Too far."
    assert (
        words["goesOn"] == "The delivery goes on from Pike Place to 47.66900, -122.30000 as before."
    )


def test_a_refused_change_shows_to_the_owner_alone_until_a_change_succeeds(
    browser: Browser, another_browser: Browser, web_stack: WebStack
) -> None:
    browser.sign_in("vera", "fabrikam")
    delivery_id = browser.scheduled_id(dropoff="Vera's office")
    change_page(browser, delivery_id)  # once the delivery service has it
    page = browser.get(f"/deliveries/{delivery_id}").text
    assert alert(page) == ""
    assert details(browser, delivery_id)["refusal"] is None

    refuse_change(web_stack, delivery_id, refused_drop_off("Pier 9, Tukwila"))
    page = browser.get(f"/deliveries/{delivery_id}").text
    words = alert(page)
    assert words.startswith("Your change was not made: the drop-off to Pier 9, Tukwila (asked for")
    assert DETAIL in words
    assert words.endswith("The delivery goes on to Vera's office as before. Try another change")
    assert f'<a href="/deliveries/{delivery_id}/change">Try another change</a>' in page
    assert 'data-reason="trip-too-long"' in page
    found = details(browser, delivery_id)["refusal"]
    assert found["asked"] == "the drop-off to Pier 9, Tukwila"
    assert found["goesOn"] == "The delivery goes on to Vera's office as before."
    # The change page shows it too, above the form, for whoever tries again.
    shown = html.unescape(change_page(browser, delivery_id))
    assert "Your change was not made:</strong> the drop-off to Pier 9, Tukwila" in shown

    # Another account sees nothing of it; the public page neither.
    another_browser.sign_in("vera", "northwind")
    for suffix in ("", "/details.json", "/change"):
        refused = another_browser.get(f"/deliveries/{delivery_id}{suffix}")
        assert refused.status_code == 404, suffix
        assert "Pier 9" not in refused.text
    with httpx.Client(base_url=web_stack.url, trust_env=False) as stranger:
        for path in (f"/track/{delivery_id}", f"/track/{delivery_id}/status.json"):
            public = stranger.get(path)
            assert public.status_code == 200, path
            for private in ("Pier 9", "not made", "refusedChange", "change-refused", "trip-too"):
                assert private not in public.text, (path, private)

    # A change that succeeds is the latest word: the refusal goes.
    status, _, _ = change(browser, delivery_id, dropoff=NEW_DROPOFF)
    assert status == 303
    wait_until(lambda: details(browser, delivery_id)["refusal"] is None, 30, "the refusal cleared")
    assert alert(browser.get(f"/deliveries/{delivery_id}").text) == ""
    assert 'id="change-refused"' not in change_page(browser, delivery_id)
