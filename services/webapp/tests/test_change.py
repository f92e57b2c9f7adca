"""Change where a delivery goes: the form on its own page, ingestion's refusals at their fields,
the pickup fixed once the drone has the package, and the change reaching the delivery (its places,
its route, its history) through the queue and the workflow."""

from __future__ import annotations

import html
import re
from typing import Any

from webapp.actions import NOTHING_TO_CHANGE, PICKED_UP

from .conftest import OUTSIDE, Browser, wait_until
from .test_schedule import field_error, value_of

NEW_DROPOFF = "47.6500,-122.3500"  # some three miles north-west of the first drop-off


def details(browser: Browser, delivery_id: str) -> dict[str, Any]:
    answer = browser.get(
        f"/deliveries/{delivery_id}/details.json", headers={"Accept": "application/json"}
    )
    assert answer.status_code == 200, answer.text
    found: dict[str, Any] = answer.json()
    return found


def change_page(browser: Browser, delivery_id: str) -> str:
    return browser.page_once_there(delivery_id, "change")


def change(browser: Browser, delivery_id: str, **fields: str) -> tuple[int, str, str]:
    """Post the change form as its page serves it; (status, location, page)."""
    page = change_page(browser, delivery_id)
    key = re.search(r'name="request_key" value="([^"]+)"', page)
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert key
    assert csrf
    form = {"csrf_token": html.unescape(csrf.group(1)), "request_key": key.group(1), **fields}
    answer = browser.post(f"/deliveries/{delivery_id}/change", form)
    return answer.status_code, answer.headers.get("location", ""), answer.text


def test_a_new_drop_off_reaches_the_delivery_and_its_route(browser: Browser) -> None:
    browser.sign_in("rosa", "fabrikam")
    delivery_id = browser.scheduled_id(dropoff="Rosa's old flat")
    page = change_page(browser, delivery_id)
    assert "Rosa&#39;s old flat" in page  # where it goes now
    assert value_of(page, "pickup") == ""
    assert value_of(page, "dropoff") == ""
    before = details(browser, delivery_id)

    status, location, _ = change(browser, delivery_id, dropoff=NEW_DROPOFF)
    assert (status, location) == (303, f"/deliveries/{delivery_id}")
    shown = html.unescape(browser.get(location).text)
    assert f"Change requested: the drop-off to {NEW_DROPOFF}." in shown

    def moved() -> dict[str, Any] | None:
        found = details(browser, delivery_id)
        return found if found["places"]["dropoff"]["at"] == [47.65, -122.35] else None

    after: dict[str, Any] = wait_until(moved, 30, "the new drop-off on the delivery")
    assert after["places"]["dropoff"]["name"] is None  # "lat,lon" names no place
    assert after["places"]["pickup"] == before["places"]["pickup"]
    assert after["route"]["dropoff"] == [47.65, -122.35]
    assert after["route"]["pickup"] == before["route"]["pickup"]
    assert "Rescheduled" in [entry["stage"] for entry in after["timeline"]]
    # The page itself, served again, shows the new place.
    page = browser.get(f"/deliveries/{delivery_id}").text
    assert 'id="dropoff-place">47.65000, -122.35000' in page
    assert "Rosa&#39;s old flat" not in page


def test_refusals_show_at_their_fields_and_nothing_changes(browser: Browser) -> None:
    browser.sign_in("ines", "fabrikam")
    delivery_id = browser.scheduled_id()
    change_page(browser, delivery_id)
    before = details(browser, delivery_id)["places"]

    status, _, page = change(browser, delivery_id, dropoff=OUTSIDE)
    assert status == 400
    assert "Please correct the fields marked below." in page
    assert "service area" in field_error(page, "dropoff")
    assert value_of(page, "dropoff") == OUTSIDE  # what was typed is kept

    status, _, page = change(browser, delivery_id, pickup=" ", dropoff="")
    assert status == 400
    problem = re.search(r'id="form-problem">([^<]+)<', page)
    assert problem
    assert html.unescape(problem.group(1)) == NOTHING_TO_CHANGE
    assert details(browser, delivery_id)["places"] == before


def test_a_drop_off_the_drone_cannot_fly_to_is_refused_at_its_field(browser: Browser) -> None:
    """Far north to far south: each place is in the area, but the delivery's drone would fly
    some 59 miles. The form says so at once, before anything is sent: nothing reaches the
    delivery, and no refusal comes later."""
    browser.sign_in("vera", "fabrikam")
    delivery_id = browser.scheduled_id(pickup="47.8400,-122.3250", dropoff="47.7000,-122.3300")
    change_page(browser, delivery_id)
    before = details(browser, delivery_id)
    status, _, page = change(browser, delivery_id, dropoff="47.4120,-122.2740")
    assert status == 400
    said = html.unescape(field_error(page, "dropoff"))
    assert said.startswith("The drone cannot fly that far: from its base (")
    assert "no trip may be longer than 50 miles." in said
    assert value_of(page, "dropoff") == "47.4120,-122.2740"
    # A drop-off it can fly to goes through as before.
    status, location, _ = change(browser, delivery_id, dropoff=NEW_DROPOFF)
    assert (status, location) == (303, f"/deliveries/{delivery_id}")
    wait_until(
        lambda: details(browser, delivery_id)["places"]["dropoff"]["at"] == [47.65, -122.35],
        30,
        "the new drop-off on the delivery",
    )
    after = details(browser, delivery_id)
    assert after["refusal"] is None
    assert after["places"]["pickup"] == before["places"]["pickup"]


def test_once_the_drone_has_the_package_only_the_drop_off_changes(browser: Browser) -> None:
    browser.sign_in("theo", "fabrikam")
    delivery_id = browser.scheduled_id()
    change_page(browser, delivery_id)
    wait_until(
        lambda: details(browser, delivery_id)["status"]["stage"] == "HeadedToDropoff",
        60,
        "the drone with the package",
    )
    page = change_page(browser, delivery_id)
    assert 'id="pickup-fixed"' in page
    assert '<input id="pickup"' not in page
    status, _, page = change(browser, delivery_id, pickup="47.6000,-122.3300")
    assert status == 400
    assert field_error(page, "pickup") == PICKED_UP


def test_an_ended_delivery_cannot_change(browser: Browser) -> None:
    browser.sign_in("uma", "fabrikam")
    delivery_id = browser.scheduled_id()
    change_page(browser, delivery_id)
    cancel = {"csrf_token": browser.csrf(f"/deliveries/{delivery_id}/cancel")}
    assert browser.post(f"/deliveries/{delivery_id}/cancel", cancel).status_code == 303
    wait_until(
        lambda: details(browser, delivery_id)["status"]["stage"] == "Cancelled",
        30,
        "the delivery cancelled",
    )
    asked = browser.get(f"/deliveries/{delivery_id}/change")
    assert (asked.status_code, asked.headers["location"]) == (303, f"/deliveries/{delivery_id}")
    page = html.unescape(browser.get(f"/deliveries/{delivery_id}").text)
    assert "This delivery is cancelled: it can no longer change." in page
    assert 'id="change-link"' not in page
