"""In a real browser, what a customer does to a delivery besides watching it: change where it
goes (the page that watches it redraws the route, and the drone delivers there; a change the
drone scheduler refuses shows on the open page until a change succeeds), cancel it (asked for
once more first) and tell someone else about it (who then hears what happens next)."""

from __future__ import annotations

import json
import time
import uuid

import pytest
from playwright.sync_api import BrowserContext

from .browsing import STAGE, inbox, message_text, schedule, screenshot, sign_in, subjects, wait_for
from .conftest import WebStack, refuse_change, wait_until
from .test_refused import refused_drop_off

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(240)]

NEW_DROPOFF = "47.6500,-122.3500"
ROUTE = "JSON.parse(document.getElementById('map').dataset.route || '{}')"
REFUSAL_HIDDEN = "document.getElementById('change-refused').hidden"


def test_a_new_drop_off_redraws_the_route_and_the_drone_delivers_there(
    context: BrowserContext, web_stack: WebStack
) -> None:
    watching = context.new_page()
    sign_in(watching, "dora")
    email = f"dora.{uuid.uuid4().hex[:8]}@example.com"
    delivery_id = schedule(watching, pickup="Dora's shop", email=email)
    first = watching.evaluate(ROUTE)
    assert first["dropoff"] != [47.65, -122.35]

    # In another tab: the change page, where the map shows the places now and a click picks one.
    changing = context.new_page()
    changing.goto(f"/deliveries/{delivery_id}")
    change = changing.locator("#change-link").get_by_role("link")
    assert change.inner_text() == "Change the pickup or drop-off"
    change.click()
    changing.wait_for_url(f"**/deliveries/{delivery_id}/change")
    assert "Dora's shop" in changing.locator("#pickup-now").inner_text()
    dropoff = changing.locator("#change-form").get_by_label("Drop-off", exact=True)
    changing.locator("#map").click()  # the drop-off is what a click sets, to begin with
    assert "Drop-off set to" in changing.locator("#map-status").inner_text()
    assert "," in dropoff.input_value()
    dropoff.fill(NEW_DROPOFF)
    screenshot(changing, "change")
    changing.get_by_role("button", name="Change the delivery").click()
    changing.wait_for_url(f"**/deliveries/{delivery_id}")
    notice = changing.locator("main").inner_text()
    assert f"Change requested: the drop-off to {NEW_DROPOFF}." in notice

    # The page that was watching all along redraws the route and the places, without a reload.
    wait_for(watching, f"{ROUTE}.dropoff?.[0] === 47.65", 30, "the route to the new drop-off")
    assert watching.evaluate(ROUTE)["pickup"] == first["pickup"]
    assert watching.locator("#dropoff-place").inner_text() == "47.65000, -122.35000"
    assert watching.locator("#trip-pickup").inner_text() == "Dora's shop"
    assert "Rescheduled" in watching.locator("#timeline").inner_text()
    # Whoever is told about the delivery is told of the change, with its new times.
    rescheduled = f"Delivery {delivery_id[:8]}: rescheduled"
    wait_until(lambda: rescheduled in subjects(web_stack, email), 30, "the Rescheduled e-mail")
    told = next(m for m in inbox(web_stack, email) if m["Subject"] == rescheduled)
    assert "Delivery ETA" in message_text(web_stack, str(told["ID"]))

    # The drone re-routed: the delivery is confirmed at the new drop-off.
    wait_for(watching, f"{STAGE} === 'Completed'", 150, "the delivery Completed")
    assert watching.locator("#change-link").count() == 0
    answer = watching.request.get(f"/deliveries/{delivery_id}/details.json")
    where = json.loads(answer.text())["status"]["lastKnownLocation"]
    assert (round(where["latitude"], 4), round(where["longitude"], 4)) == (47.65, -122.35)


def test_a_cancel_is_asked_for_once_more_and_then_done(context: BrowserContext) -> None:
    page = context.new_page()
    sign_in(page, "carmen")
    delivery_id = schedule(page, pickup="Carmen's bakery", dropoff="47.6400,-122.3100")
    cancel = page.locator("#cancel-link").get_by_role("link", name="Cancel this delivery")

    # The first click only asks: what the cancel does, and that it cannot be undone.
    cancel.click()
    page.wait_for_url(f"**/deliveries/{delivery_id}/cancel")
    assert page.get_by_role("heading", level=1).inner_text() == "Cancel this delivery?"
    assert "Carmen's bakery" in page.locator("main").inner_text()
    assert "cannot be undone" in page.locator("#cancel-effect").inner_text()
    screenshot(page, "cancel")
    page.get_by_role("link", name="No, keep it").click()
    page.wait_for_url(f"**/deliveries/{delivery_id}")
    page.wait_for_selector("#details-title")
    time.sleep(2)  # a cancel, had one been sent, reaches the delivery in well under this
    page.reload()
    assert page.locator("#stage").get_attribute("data-stage") != "Cancelled"

    # Asked again and confirmed: the delivery is cancelled, and the page stops offering it.
    cancel.click()
    page.wait_for_url(f"**/deliveries/{delivery_id}/cancel")
    page.get_by_role("button", name="Yes, cancel the delivery").click()
    page.wait_for_url(f"**/deliveries/{delivery_id}")
    assert "Cancellation requested." in page.locator("main").inner_text()
    wait_for(page, f"{STAGE} === 'Cancelled'", 60, "the delivery Cancelled")
    assert page.locator("#cancel-link").count() == 0
    assert "Cancelled" in page.locator("#timeline").inner_text()

    # Once it has ended, the question is not asked: its page says there is nothing to cancel.
    page.goto(f"/deliveries/{delivery_id}/cancel")
    page.wait_for_url(f"**/deliveries/{delivery_id}")
    assert (
        "This delivery is cancelled: there is nothing to cancel."
        in page.locator("main").inner_text()
    )


def test_someone_told_later_hears_what_happens_next(
    context: BrowserContext, web_stack: WebStack
) -> None:
    page = context.new_page()
    sign_in(page, "gus")
    delivery_id = schedule(page)  # nobody to tell
    short = delivery_id[:8]
    friend = f"gus.friend.{uuid.uuid4().hex[:8]}@example.com"
    page.get_by_role("link", name="Tell someone else about it").click()
    page.wait_for_url(f"**/deliveries/{delivery_id}/notify")
    assert page.locator("#told").inner_text() == "Nobody yet."
    page.get_by_label("E-mail", exact=True).fill(friend)
    screenshot(page, "notify")
    page.get_by_role("button", name="Tell them").click()
    page.wait_for_url(f"**/deliveries/{delivery_id}")
    assert f"From now on, {friend} will be told too." in page.locator("main").inner_text()
    assert page.locator("#told").inner_text() == f"Told: {friend} (e-mail)"

    # The delivery is cancelled: the friend hears of it (and not of the drone assigned before).
    page.locator("#cancel-link").get_by_role("link").click()
    page.get_by_role("button", name="Yes, cancel the delivery").click()
    wait_until(
        lambda: f"Delivery {short}: cancelled" in subjects(web_stack, friend),
        60,
        "the Cancelled e-mail to the one told later",
    )
    # On a busy machine the drone may have picked the package up before the cancel, which the
    # friend hears too; never of the assignment made before they were told.
    told = subjects(web_stack, friend)
    assert told.count(f"Delivery {short}: cancelled") == 1, told
    assert f"Delivery {short}: a drone is on its way" not in told, told
    wait_for(page, f"{STAGE} === 'Cancelled'", 30, "the page showing Cancelled")
    assert page.locator("#notify-link").count() == 0


def test_a_refused_change_shows_live_until_a_change_succeeds(
    context: BrowserContext, web_stack: WebStack
) -> None:
    watching = context.new_page()
    sign_in(watching, "nora")
    delivery_id = schedule(watching, dropoff="Nora's studio")
    refused = watching.locator("#change-refused")
    assert refused.is_hidden()

    # The drone scheduler refuses a change ingestion had accepted: the open page says so.
    refuse_change(web_stack, delivery_id, refused_drop_off("Pier 9, Tukwila"))
    wait_for(watching, f"!{REFUSAL_HIDDEN}", 30, "the refusal on the open page")
    words = refused.inner_text()
    assert "Your change was not made: the drop-off to Pier 9, Tukwila (asked for" in words
    assert "no trip may be longer than 50 miles." in words
    assert "The delivery goes on to Nora's studio as before." in words
    assert refused.get_attribute("role") == "alert"
    screenshot(watching, "change-refused")

    # In another tab, from the alert's link: the change page says what failed; a new drop-off.
    changing = context.new_page()
    changing.goto(f"/deliveries/{delivery_id}")
    changing.locator("#change-refused").get_by_role("link", name="Try another change").click()
    changing.wait_for_url(f"**/deliveries/{delivery_id}/change")
    assert "Pier 9, Tukwila" in changing.locator("#change-refused").inner_text()
    changing.locator("#change-form").get_by_label("Drop-off", exact=True).fill(NEW_DROPOFF)
    changing.get_by_role("button", name="Change the delivery").click()
    changing.wait_for_url(f"**/deliveries/{delivery_id}")

    # The change is made: the alert goes from both pages, without a reload.
    wait_for(watching, REFUSAL_HIDDEN, 30, "the refusal gone from the open page")
    wait_for(watching, f"{ROUTE}.dropoff?.[0] === 47.65", 30, "the route to the new drop-off")
    wait_for(changing, REFUSAL_HIDDEN, 30, "the refusal gone from the changing page")
    assert "Change requested: the drop-off to" in changing.locator("main").inner_text()

    # Another change refused: it replaces the "Change requested" notice, and says where the
    # delivery goes now.
    refuse_change(web_stack, delivery_id, refused_drop_off("Kent Station"))
    for page in (watching, changing):
        wait_for(page, f"!{REFUSAL_HIDDEN}", 30, "the second refusal")
        words = page.locator("#change-refused").inner_text()
        assert "the drop-off to Kent Station" in words
        assert "The delivery goes on to 47.65000, -122.35000 as before." in words
    assert "Change requested" not in changing.locator("main").inner_text()
