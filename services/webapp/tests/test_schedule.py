"""The schedule form: refusals come back as 400 pages that say what is wrong, next to the field,
with everything typed still filled in; a good form schedules once, even when sent twice."""

from __future__ import annotations

import html
import re
from typing import Any

import httpx

from webapp.schedule import WEIGHT_ERROR, weight_of

from .conftest import OUTSIDE, PICKUP, Browser, wait_until


def field_error(page: str, name: str) -> str:
    """The error shown under the field ``name`` (its ``<p id="<name>-error">``)."""
    found = re.search(rf'<p class="field-error" id="{name}-error">([^<]*)</p>', page)
    assert found, f"no error shown for {name}"
    return html.unescape(found.group(1))


def value_of(page: str, name: str) -> str:
    found = re.search(rf'<input id="{name}" name="{name}"[^>]*value="([^"]*)"', page)
    assert found, f"no input {name}"
    return html.unescape(found.group(1))


def listed(browser: Browser) -> list[str]:
    answer = browser.get("/deliveries.json", headers={"Accept": "application/json"})
    assert answer.status_code == 200, answer.text
    return [item["id"] for item in answer.json()["items"]]


def test_a_weight_that_is_not_a_number_is_refused_and_nothing_typed_is_lost(
    browser: Browser,
) -> None:
    browser.sign_in("wanda", "fabrikam")
    answer = browser.schedule(weight="heavy", tag="gift", email="wanda@example.com")
    assert answer.status_code == 400
    assert "Please correct the fields marked below." in answer.text
    assert 'id="form-problem"' not in answer.text
    assert field_error(answer.text, "weight") == WEIGHT_ERROR
    assert answer.text.count('class="field-error"') == 1
    assert 'aria-describedby="weight-error"' in answer.text
    assert 'aria-invalid="true"' in answer.text
    assert value_of(answer.text, "weight") == "heavy"
    assert value_of(answer.text, "pickup") == PICKUP
    assert value_of(answer.text, "tag") == "gift"
    assert value_of(answer.text, "email") == "wanda@example.com"
    assert listed(browser) == []


def test_every_field_in_error_is_shown_in_one_round(browser: Browser) -> None:
    """A weight that is not a number does not hide the other fields' errors until it is mended:
    ingestion sees the whole form and names each field, and the weight keeps the form's words."""
    browser.sign_in("wendell", "fabrikam")
    answer = browser.schedule(weight="a lot", email="not an address", webhook="http://x")
    assert answer.status_code == 400
    assert field_error(answer.text, "weight") == WEIGHT_ERROR
    assert "@" in field_error(answer.text, "email")
    assert field_error(answer.text, "webhook")
    assert answer.text.count('class="field-error"') == 3
    assert listed(browser) == []


def test_the_weight_is_read_with_a_decimal_point_or_comma() -> None:
    assert [weight_of(text) for text in ("2,5", "2.5", " 3 ", "1,000.5", "nan", "inf", "")] == [
        2.5,
        2.5,
        3.0,
        None,
        None,
        None,
        None,
    ]


def test_a_weight_with_a_decimal_comma_schedules(browser: Browser) -> None:
    browser.sign_in("wilma", "fabrikam")
    delivery_id = browser.scheduled_id(weight="2,5")
    assert wait_until(lambda: listed(browser) == [delivery_id], 30, "the delivery listed")


def test_ingestions_field_errors_show_next_to_their_fields(browser: Browser) -> None:
    browser.sign_in("xavier", "fabrikam")
    answer = browser.schedule(pickup="", email="not an address", dropoff="47.62,-122.35")
    assert answer.status_code == 400
    assert field_error(answer.text, "pickup")
    assert field_error(answer.text, "email")
    assert 'aria-describedby="pickup-hint pickup-error"' in answer.text
    assert value_of(answer.text, "dropoff") == "47.62,-122.35"
    assert value_of(answer.text, "email") == "not an address"
    assert listed(browser) == []


def test_a_place_outside_the_service_area_is_explained_at_its_field(browser: Browser) -> None:
    browser.sign_in("yusuf", "fabrikam")
    answer = browser.schedule(dropoff=OUTSIDE)
    assert answer.status_code == 400
    why = field_error(answer.text, "dropoff")
    assert "from the nearest drone base" in why
    assert "the service area reaches 10 miles" in why
    assert value_of(answer.text, "dropoff") == OUTSIDE
    assert listed(browser) == []


def test_the_same_form_sent_twice_schedules_once(browser: Browser) -> None:
    browser.sign_in("zoe", "fabrikam")
    page = browser.get("/deliveries/new")
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    key = re.search(r'name="request_key" value="([^"]+)"', page.text)
    assert csrf
    assert key
    form = {
        "csrf_token": html.unescape(csrf.group(1)),
        "request_key": html.unescape(key.group(1)),
        "pickup": PICKUP,
        "dropoff": "47.63,-122.32",
        "size": "Medium",
        "weight": "3.5",
        "confirmation": "None",
    }
    first = browser.post("/deliveries/new", form)
    second = browser.post("/deliveries/new", form)
    assert first.status_code == second.status_code == 303
    assert first.headers["location"] == second.headers["location"]
    delivery_id = first.headers["location"].removeprefix("/deliveries/")
    assert wait_until(lambda: listed(browser) == [delivery_id], 30, "the delivery listed once")


def test_a_scheduled_delivery_opens_its_tracking_page(browser: Browser) -> None:
    browser.sign_in("ada", "fabrikam")
    delivery_id = browser.scheduled_id(email="ada@example.com", expedited="on")

    # Until the workflow has made it, the page says it is being scheduled; then it is the
    # delivery's own page, and soon lists the e-mail sent (the notifier, the web app's token).
    def page() -> str | None:
        found = browser.get(f"/deliveries/{delivery_id}")
        assert found.status_code == 200, found.text
        ready = 'id="details-title"' in found.text and "ada@example.com" in found.text
        return found.text if ready else None

    shown = wait_until(page, 40, "the delivery's page with its e-mail notice")
    assert delivery_id in shown
    assert 'id="map"' in shown
    assert 'id="timeline"' in shown
    assert f'href="/track/{delivery_id}"' in shown  # the link to share


def test_places_named_in_words_name_the_delivery_to_its_owner_only(
    browser: Browser, web_stack: Any
) -> None:
    browser.sign_in("grace", "fabrikam")
    pickup, dropoff = "Pike Place Market", "Grace's office, 4th floor"
    delivery_id = browser.scheduled_id(pickup=pickup, dropoff=dropoff)
    pointed = browser.scheduled_id()  # places typed as coordinates

    def listed() -> dict[str, dict[str, Any]] | None:
        answer = browser.get("/deliveries.json", headers={"Accept": "application/json"})
        assert answer.status_code == 200, answer.text
        items = {item["id"]: item for item in answer.json()["items"]}
        return items if {delivery_id, pointed} <= items.keys() else None

    items = wait_until(listed, 30, "both deliveries in her list")
    assert (items[delivery_id]["pickupPlace"], items[delivery_id]["dropoffPlace"]) == (
        pickup,
        dropoff,
    )
    assert (items[pointed]["pickupPlace"], items[pointed]["dropoffPlace"]) == (None, None)
    listing = html.unescape(browser.get("/deliveries").text)
    assert f'<td class="place" title="from {pickup}">{dropoff}</td>' in listing

    page = html.unescape(browser.get(f"/deliveries/{delivery_id}").text)
    trip = re.search(r'<p class="trip" id="trip">(.*?)</p>', page)
    assert trip, "no trip line on the delivery's page"
    assert re.sub(r"<[^>]+>", "", trip.group(1)) == f"From {pickup} to {dropoff}"
    unnamed = browser.get(f"/deliveries/{pointed}").text
    assert 'id="details-title"' in unnamed  # its own page, not the "scheduling" one
    assert 'id="trip"' not in unnamed  # nothing to name

    # Names are personal data: the public page never shows them.
    with httpx.Client(base_url=web_stack.url, trust_env=False) as stranger:
        public = stranger.get(f"/track/{delivery_id}")
        assert public.status_code == 200
        assert "Pike Place" not in public.text
        assert "office" not in public.text
