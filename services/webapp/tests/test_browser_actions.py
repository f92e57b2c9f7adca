"""In a real browser, what a customer does to a delivery besides watching it: cancel it (asked
for once more first) and tell someone else about it (who then hears what happens next)."""

from __future__ import annotations

import time
import uuid

import pytest
from playwright.sync_api import BrowserContext

from .browsing import STAGE, schedule, screenshot, sign_in, subjects, wait_for
from .conftest import WebStack, wait_until

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(240)]


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
    assert subjects(web_stack, friend) == [f"Delivery {short}: cancelled"]
    wait_for(page, f"{STAGE} === 'Cancelled'", 30, "the page showing Cancelled")
    assert page.locator("#notify-link").count() == 0
